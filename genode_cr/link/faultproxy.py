"""A bad serial line on demand: drop, corrupt, duplicate, delay, garble and cut.

Two layers, like the link itself:

* ``FaultInjector`` decides what happens to a byte stream, without I/O: bytes
  and the current time in, ``(release_time, bytes)`` pieces out.  Given the
  same seed and the same input units it makes the same decisions, so a failing
  run can be replayed.
* ``FaultProxy`` is a TCP relay on loopback that runs one injector per
  direction of every connection it forwards.  ``ports.memory_pair()`` uses the
  injector directly for in-process tests.

By default the stream is cut into units at 0x00, so that "corrupt 1 %" means
1 % of link frames; with ``delimiter=None`` a unit is whatever one read returned.

    with FaultProxy(("127.0.0.1", board_port), Faults(corrupt=0.01, drop=0.005), seed=7) as proxy:
        agent = BlockingLink.open(f"socket://127.0.0.1:{proxy.port}")
        ...
        proxy.cut(2.0)   # the line goes silent for two seconds, both ways
        proxy.sever(2.0) # every connection is reset, new ones are refused for two seconds
"""

from __future__ import annotations

import queue
import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable

__all__ = ["Faults", "FaultInjector", "FaultProxy"]

# A unit never grows past this while waiting for its delimiter; the line would
# not hold a partial frame back forever either.
_MAX_UNIT = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """What goes wrong, per unit (probabilities in 0..1, times in seconds)."""

    drop: float = 0.0  #: the unit vanishes
    corrupt: float = 0.0  #: 1 to 3 bits of the unit flip
    duplicate: float = 0.0  #: the unit arrives twice
    garbage: float = 0.0  #: 1 to 64 random bytes are inserted before the unit
    delay: float = 0.0  #: extra latency, uniform in [0, delay]; order is kept
    delimiter: bytes | None = b"\x00"


class FaultInjector:
    def __init__(self, faults: Faults, seed: int | str = 0) -> None:
        self.faults = faults
        self._rng = random.Random(seed)
        self._partial = bytearray()
        self._release = 0.0
        self._cut_until = float("-inf")
        #: Units by fate: "passed", "dropped", "corrupted", "duplicated", "garbled", "cut_bytes".
        self.counts: Counter[str] = Counter()

    def cut(self, now: float, duration: float) -> None:
        """Lose every byte for ``duration`` seconds, frames torn at both edges."""
        self._cut_until = max(self._cut_until, now + duration)

    def feed(self, data: bytes, now: float) -> list[tuple[float, bytes]]:
        """Bytes read from one side; return what to write to the other, and when."""
        if now < self._cut_until:
            self.counts["cut_bytes"] += len(data)
            self._partial.clear()
            return []
        out: list[tuple[float, bytes]] = []
        for unit in self._units(data):
            for piece in self._fate(unit):
                self._release = max(self._release, now + self._rng.uniform(0, self.faults.delay))
                out.append((self._release, piece))
        return out

    def flush(self, now: float) -> list[tuple[float, bytes]]:
        """Whatever is held waiting for a delimiter, passed on as it is."""
        unit, self._partial = bytes(self._partial), bytearray()
        return [(max(self._release, now), unit)] if unit else []

    def _units(self, data: bytes) -> list[bytes]:
        delimiter = self.faults.delimiter
        if delimiter is None:
            return [data] if data else []
        self._partial += data
        units = []
        while (end := self._partial.find(delimiter)) >= 0 or len(self._partial) > _MAX_UNIT:
            cut = end + len(delimiter) if end >= 0 else _MAX_UNIT
            units.append(bytes(self._partial[:cut]))
            del self._partial[:cut]
        return units

    def _fate(self, unit: bytes) -> list[bytes]:
        f, rng = self.faults, self._rng
        # Draw every decision on every unit so that one knob does not shift the
        # random stream of the others: runs stay comparable across settings.
        drop, corrupt, dup, garble = (rng.random() for _ in range(4))
        if drop < f.drop:
            self.counts["dropped"] += 1
            return []
        pieces = [unit]
        if corrupt < f.corrupt:
            self.counts["corrupted"] += 1
            damaged = bytearray(unit)
            for _ in range(rng.randint(1, 3)):
                damaged[rng.randrange(len(damaged))] ^= 1 << rng.randrange(8)
            pieces = [bytes(damaged)]
        if garble < f.garbage:
            self.counts["garbled"] += 1
            pieces.insert(0, rng.randbytes(rng.randint(1, 64)))
        if dup < f.duplicate:
            self.counts["duplicated"] += 1
            pieces.append(pieces[-1])
        self.counts["passed"] += 1
        return pieces


class FaultProxy:
    """A TCP relay on 127.0.0.1 that damages traffic on its way through.

    It listens on an ephemeral port (``port``) and, for every client that
    connects, connects to ``target`` and relays both ways: ``upstream`` faults
    apply to client→target bytes, ``downstream`` to target→client.  Leave with
    ``close()`` or the context manager; both stop and join every thread.
    """

    def __init__(
        self,
        target: tuple[str, int],
        upstream: Faults | None = None,
        downstream: Faults | None = None,
        *,
        seed: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self.target = target
        self.upstream = upstream or Faults()
        self.downstream = downstream if downstream is not None else self.upstream
        self.seed = seed
        self._listener = socket.create_server((host, 0))
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._injectors: list[tuple[str, FaultInjector]] = []
        self._threads: list[threading.Thread] = []
        self._severed_until = float("-inf")
        #: Connections reset or refused by sever().
        self.severed = 0
        self._start(self._accept_loop, "faultproxy-accept")

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def url(self) -> str:
        """The pyserial URL of the proxy's listening end."""
        return f"socket://{self.address[0]}:{self.port}"

    def set_faults(self, upstream: Faults, downstream: Faults | None = None) -> None:
        """Change the faults of current and future connections (e.g. heal the line)."""
        with self._lock:
            self.upstream = upstream
            self.downstream = downstream if downstream is not None else upstream
            for name, injector in self._injectors:
                injector.faults = self.upstream if name == "up" else self.downstream

    def cut(self, duration: float) -> None:
        """Silence every connection, both ways, for ``duration`` seconds from now."""
        now = time.monotonic()
        with self._lock:
            for _, injector in self._injectors:
                injector.cut(now, duration)

    def sever(self, duration: float) -> None:
        """A network that drops: reset every connection now and refuse new ones
        for ``duration`` seconds (a peer sees its calls fail, not stall)."""
        with self._lock:
            self._severed_until = time.monotonic() + duration
            sockets, self._sockets = self._sockets, []
            self._injectors = []
        for sock in sockets:
            _reset(sock)
        self.severed += len(sockets) // 2

    def counts(self, direction: str | None = None) -> Counter[str]:
        """Fates of units so far, over all connections; direction "up" or "down" or both."""
        total: Counter[str] = Counter()
        with self._lock:
            for name, injector in self._injectors:
                if direction in (None, name):
                    total.update(injector.counts)
        return total

    def close(self) -> None:
        self._closed.set()
        # The acceptor goes first, so no relay can start behind our back.
        _shut(self._listener)
        accept_thread, *_ = self._threads
        accept_thread.join(timeout=5)
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)
        for thread in self._threads[1:]:
            thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- relaying ------------------------------------------------------------------

    def _start(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        index = 0
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if time.monotonic() < self._severed_until:
                _reset(client)
                self.severed += 1
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            up = FaultInjector(self.upstream, seed=f"{self.seed}/{index}/up")
            down = FaultInjector(self.downstream, seed=f"{self.seed}/{index}/down")
            with self._lock:
                if self._closed.is_set():
                    client.close()
                    server.close()
                    return
                self._sockets += [client, server]
                self._injectors += [("up", up), ("down", down)]
            self._relay(client, server, up, f"{index}/up")
            self._relay(server, client, down, f"{index}/down")
            index += 1

    def _relay(self, src: socket.socket, dst: socket.socket, injector: FaultInjector, name: str) -> None:
        # Reading and writing in separate threads lets a delayed piece wait
        # without stalling the reads behind it.
        pieces: queue.Queue[tuple[float, bytes] | None] = queue.Queue()
        self._start(self._read_loop, f"faultproxy-read-{name}", src, injector, pieces)
        self._start(self._write_loop, f"faultproxy-write-{name}", dst, pieces)

    def _read_loop(self, src: socket.socket, injector: FaultInjector, pieces: queue.Queue) -> None:
        try:
            while data := src.recv(65536):
                with self._lock:
                    out = injector.feed(data, time.monotonic())
                for piece in out:
                    pieces.put(piece)
            with self._lock:
                for piece in injector.flush(time.monotonic()):
                    pieces.put(piece)
        except OSError:
            pass
        finally:
            pieces.put(None)

    def _write_loop(self, dst: socket.socket, pieces: queue.Queue) -> None:
        try:
            while (piece := pieces.get()) is not None:
                release, data = piece
                if (wait := release - time.monotonic()) > 0:
                    if self._closed.wait(wait):
                        return
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _reset(sock: socket.socket) -> None:
    # SO_LINGER 0: close() sends RST, as a dropped route or a rebooted peer would.
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    _shut(sock)


def _shut(sock: socket.socket) -> None:
    # shutdown() also wakes a thread blocked in accept() or recv() on it; close() alone may not.
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
