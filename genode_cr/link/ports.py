"""Port objects that look enough like a pyserial ``Serial`` for the transports.

A transport needs only ``read(size)`` (waiting at most ``timeout`` seconds),
``write(data)``, ``timeout``, ``close()`` and ``is_open``.  pyserial's own
ports provide that; this module adds the ends pyserial cannot open:

* ``memory_pair()``: two ports joined in memory, optionally through a
  FaultInjector per direction: the in-memory transport for tests.
* ``SocketPort``: the accepting side of a TCP connection (``socket://`` in
  pyserial is a client only), e.g. an emulated board serving its UART.
* ``CrossedPort``: reads from one port and writes to another.  Two pyserial
  ``loop://`` ports each echo what is written to them, i.e. each is a one-way
  pipe; crossing two of them gives a two-ended line made of nothing but
  pyserial's loop handler.

Unlike pyserial's ports these return from ``read()`` as soon as any bytes are
there instead of waiting for ``size`` of them; the transports accept both.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from typing import Protocol

import serial

from .faultproxy import FaultInjector, Faults

__all__ = ["SerialLike", "MemoryPort", "memory_pair", "SocketPort", "CrossedPort", "loop_pair"]


class SerialLike(Protocol):
    timeout: float | None

    @property
    def is_open(self) -> bool: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    def close(self) -> None: ...


class _Pipe:
    """One direction of an in-memory line: timed pieces, read in order."""

    def __init__(self, injector: FaultInjector | None) -> None:
        self._pieces: deque[tuple[float, bytes]] = deque()
        self._cond = threading.Condition()
        self.injector = injector
        self.closed = False

    def write(self, data: bytes) -> None:
        now = time.monotonic()
        with self._cond:
            if self.closed:
                raise serial.SerialException("memory port closed")
            pieces = self.injector.feed(data, now) if self.injector else [(now, bytes(data))]
            self._pieces.extend(pieces)
            self._cond.notify_all()

    def read(self, size: int, timeout: float | None) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                now = time.monotonic()
                if self._pieces and self._pieces[0][0] <= now:
                    return self._take(size, now)
                if self.closed:
                    raise serial.SerialException("memory port closed")
                wake = self._pieces[0][0] if self._pieces else None
                if deadline is not None:
                    if now >= deadline:
                        return b""
                    wake = deadline if wake is None else min(wake, deadline)
                self._cond.wait(None if wake is None else wake - now)

    def _take(self, size: int, now: float) -> bytes:
        out = bytearray()
        while self._pieces and self._pieces[0][0] <= now and len(out) < size:
            release, piece = self._pieces.popleft()
            room = size - len(out)
            if len(piece) > room:
                self._pieces.appendleft((release, piece[room:]))
                piece = piece[:room]
            out += piece
        return bytes(out)

    def waiting(self) -> int:
        with self._cond:
            return sum(len(p) for _, p in self._pieces)

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class MemoryPort:
    """One end of a ``memory_pair()``."""

    def __init__(self, rx: _Pipe, tx: _Pipe, timeout: float | None = None) -> None:
        self._rx, self._tx = rx, tx
        self.timeout = timeout

    @property
    def is_open(self) -> bool:
        return not self._tx.closed

    @property
    def in_waiting(self) -> int:
        return self._rx.waiting()

    @property
    def tx_injector(self) -> FaultInjector | None:
        """The injector damaging what this end writes, if any (to inspect or heal it)."""
        return self._tx.injector

    def read(self, size: int = 1) -> bytes:
        return self._rx.read(size, self.timeout)

    def write(self, data: bytes) -> int:
        self._tx.write(data)
        return len(data)

    def close(self) -> None:
        # Both directions end, as when a cable is pulled.
        self._tx.close()
        self._rx.close()


def memory_pair(
    a_to_b: Faults | None = None, b_to_a: Faults | None = None, *, seed: int = 0
) -> tuple[MemoryPort, MemoryPort]:
    """Two ports joined in memory; faults, if given, apply per direction."""
    ab = _Pipe(FaultInjector(a_to_b, seed=f"{seed}/ab") if a_to_b else None)
    ba = _Pipe(FaultInjector(b_to_a, seed=f"{seed}/ba") if b_to_a else None)
    return MemoryPort(ba, ab), MemoryPort(ab, ba)


class SocketPort:
    """A connected socket behind the port interface (the side that accepted)."""

    def __init__(self, sock: socket.socket, timeout: float | None = None) -> None:
        self._sock = sock
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._open = True
        self.timeout = timeout

    @property
    def is_open(self) -> bool:
        return self._open

    def read(self, size: int = 1) -> bytes:
        self._sock.settimeout(self.timeout)
        try:
            data = self._sock.recv(size)
        except socket.timeout:
            return b""
        except OSError as exc:
            raise serial.SerialException(f"socket failed: {exc}") from exc
        if not data:
            # pyserial's socket:// reports EOF the same way.
            raise serial.SerialException("socket disconnected")
        return data

    def write(self, data: bytes) -> int:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise serial.SerialException(f"socket failed: {exc}") from exc
        return len(data)

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()


class CrossedPort:
    """Reads from ``rx``, writes to ``tx``; closing closes both."""

    def __init__(self, rx: SerialLike, tx: SerialLike) -> None:
        self._rx, self._tx = rx, tx

    @property
    def timeout(self) -> float | None:
        return self._rx.timeout

    @timeout.setter
    def timeout(self, value: float | None) -> None:
        self._rx.timeout = value

    @property
    def is_open(self) -> bool:
        return self._rx.is_open and self._tx.is_open

    def read(self, size: int = 1) -> bytes:
        return self._rx.read(size)

    def write(self, data: bytes) -> int | None:
        return self._tx.write(data)

    def close(self) -> None:
        self._rx.close()
        self._tx.close()


def loop_pair(timeout: float | None = None) -> tuple[CrossedPort, CrossedPort]:
    """A two-ended line made of two pyserial ``loop://`` ports, one per direction."""
    a_to_b = serial.serial_for_url("loop://", timeout=timeout)
    b_to_a = serial.serial_for_url("loop://", timeout=timeout)
    return CrossedPort(b_to_a, a_to_b), CrossedPort(a_to_b, b_to_a)
