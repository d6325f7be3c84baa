"""Moving bytes between a port and a link core on two threads (and opening the port).

Both transports sit on this: the blocking one waits on the condition, the
asyncio one is woken through ``on_wake``.  The reader thread feeds whatever
arrives into the core; the writer thread runs the core's timers and writes
what the core wants sent.  They are separate because a paced write blocks for
a whole frame time, and reading must not stop meanwhile.

The core's own event queue is the receive buffer: nothing is copied into a
second queue, so the core's ``max_pending`` bound (refusing DATA the user has
not made room for) is the only one there is.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, TypeVar

import serial

from ._errors import LinkDead, LinkReset, LocalLinkError
from ._events import NEED_DATA, Event, LinkEstablished, MessageReceived, PeerClosed, PeerRestarted
from ._link import Link, LinkState
from .pacing import PacedPort
from .ports import SerialLike

__all__ = ["Pump", "open_port"]

T = TypeVar("T")


def open_port(url: str, baud: int | None = None, pace: bool = False) -> SerialLike:
    """A pyserial port for ``url``, optionally paced to ``baud`` (see BlockingLink.open)."""
    if pace and baud is None:
        raise ValueError("pace=True needs a baud rate")
    kwargs = {"baudrate": baud} if baud is not None else {}
    port: SerialLike = serial.serial_for_url(url, timeout=0.01, **kwargs)
    return PacedPort(port, baud) if pace and baud is not None else port


class Pump:
    def __init__(
        self,
        port: SerialLike,
        link: Link,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_wake: Callable[[], None] | None = None,
        poll: float = 0.01,
        read_size: int = 4096,
    ) -> None:
        self.port = port
        self.link = link
        self.clock = clock
        self.cond = threading.Condition()
        #: Set when the port failed; raised to the user as the link's death.
        self.failure: LinkDead | None = None
        self._on_wake = on_wake
        self._read_size = read_size
        # Short reads keep acks prompt; the reader wakes this often when idle.
        port.timeout = poll
        self._write_size: int | None = getattr(port, "preferred_write_size", None)
        self._closing = False
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._read_loop, name="link-reader", daemon=True),
            threading.Thread(target=self._write_loop, name="link-writer", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Close the link (a RESET goes out if the writer gets to it), then the threads and port."""
        with self.cond:
            if self._closing:
                return
            self._closing = True
            self.link.close()
            self.cond.notify_all()
        reader, writer = self._threads
        if writer.is_alive():
            writer.join(timeout)
        self._stopping = True
        if reader.is_alive():
            reader.join(timeout)
        self.port.close()
        self._wake()

    # ---- checks for the transports: each takes the lock briefly, never blocks ------

    def poll_event(self) -> Event | None:
        with self.cond:
            event = self.link.next_event()
            if event is not NEED_DATA:
                return event
            if self.failure is not None:
                raise self.failure
            if self._closing:
                raise LocalLinkError("the link is closed")
            return None

    def poll_message(self) -> bytes | None:
        while (event := self.poll_event()) is not None:
            if isinstance(event, MessageReceived):
                return event.payload
            if isinstance(event, (PeerRestarted, PeerClosed)):
                raise LinkReset(event)
            assert isinstance(event, LinkEstablished)
        return None

    def try_send(self, payload: bytes, max_buffered: int) -> bool:
        with self.cond:
            # The link's own error says more than the port's end that followed
            # it (a board that refused us, then hung up).
            if self.link.error is not None:
                raise self.link.error
            if self.failure is not None:
                raise self.failure
            if self._closing:
                raise LocalLinkError("send on a closed link")
            buffered = self.link.send_buffered
            # One message larger than the whole budget still goes, alone.
            if buffered and buffered + len(payload) > max_buffered:
                return False
            self.link.send_message(payload)
            self.cond.notify_all()
            return True

    def poll_established(self) -> bool | None:
        with self.cond:
            if self.link.state is LinkState.OPEN:
                return True
            if self.link.error is not None:
                raise self.link.error
            if self.failure is not None:
                raise self.failure
            if self.link.state is not LinkState.HANDSHAKE:
                raise LocalLinkError("the link is closed")
            return None

    def wait(self, check: Callable[[], T | None], timeout: float | None) -> T:
        """Block until ``check()`` returns something; TimeoutError after ``timeout`` seconds."""
        deadline = None if timeout is None else self.clock() + timeout
        with self.cond:
            while (result := check()) is None:
                remaining = None if deadline is None else deadline - self.clock()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError("board link: timed out")
                self.cond.wait(remaining)
            return result

    # ---- threads -------------------------------------------------------------------

    def _wake(self) -> None:
        if self._on_wake is not None:
            self._on_wake()

    def _port_failed(self, exc: BaseException) -> None:
        with self.cond:
            if not self._closing:
                self.failure = LinkDead(f"board link dead: port failed: {exc}")
                self.failure.__cause__ = exc
            self.cond.notify_all()
        self._wake()

    def _read_loop(self) -> None:
        while not self._stopping:
            try:
                data = self.port.read(self._read_size)
            except Exception as exc:  # pyserial raises SerialException, OSError, TypeError...
                if not self._stopping:
                    self._port_failed(exc)
                return
            if data:
                with self.cond:
                    self.link.receive_data(data, self.clock())
                    self.cond.notify_all()
                self._wake()

    def _write_loop(self) -> None:
        while (out := self._next_output()) is not None:
            try:
                self.port.write(out)
            except Exception as exc:
                self._port_failed(exc)
                return

    def _next_output(self) -> bytes | None:
        """Wait for bytes to write; None once closed (and the RESET written) or failed."""
        link = self.link
        woke = False
        try:
            with self.cond:
                while True:
                    now = self.clock()
                    deadline = link.next_deadline()
                    if deadline is not None and deadline <= now:
                        state = link.state
                        link.handle_timeout(now)
                        if link.state is not state:
                            # A link that died must wake whoever waits on it.
                            self.cond.notify_all()
                            woke = True
                    out = link.data_to_send(now, self._write_size)
                    if out:
                        return out
                    if self._closing or self.failure is not None:
                        return None
                    deadline = link.next_deadline()
                    self.cond.wait(1.0 if deadline is None else min(1.0, max(0.0, deadline - now)))
        finally:
            if woke:
                self._wake()
