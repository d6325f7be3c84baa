"""Two link cores joined by a simulated line, on simulated time.

Every byte one core sends is parsed by the other, so each test checks both
directions of the wire format.  A line filter sees whole wire frames (each with
its trailing 0x00; the padding 0x00 before a SYNC arrives as b"\\x00") and
returns what should arrive instead: nothing, the frame, a damaged copy, two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from genode_cr.link import NEED_DATA, Event, Frame, FrameError, Link, MessageReceived, decode_frame

LineFilter = Callable[[bytes], Iterable[bytes]]

DEFAULTS = dict(rto=0.2, dead_after=5.0, keepalive=None, handshake_timeout=None)


def wire_frames(data: bytes) -> list[bytes]:
    """Split a byte stream into wire frames, each ending in its 0x00."""
    pieces = data.split(b"\x00")[:-1]
    return [piece + b"\x00" for piece in pieces]


def parse(wire: bytes) -> Frame | None:
    try:
        return decode_frame(wire.rstrip(b"\x00"))
    except FrameError:
        return None


class SimPair:
    def __init__(self, a: Link | None = None, b: Link | None = None, **options: object) -> None:
        opts = {**DEFAULTS, **options}
        self.a = a or Link(epoch=0xAAAA0001, **opts)
        self.b = b or Link(epoch=0xBBBB0001, **opts)
        self.now = 0.0
        self.a_to_b: LineFilter | None = None
        self.b_to_a: LineFilter | None = None
        #: Every wire frame put on the line by each side, before any filter.
        self.sent: dict[str, list[bytes]] = {"a": [], "b": []}
        self.events: dict[str, list[Event]] = {"a": [], "b": []}

    def _carry(self, src: Link, dst: Link, name: str, line: LineFilter | None, max_bytes: int | None) -> bool:
        data = src.data_to_send(self.now, max_bytes)
        frames = wire_frames(data)
        self.sent[name] += frames
        if line is not None:
            data = b"".join(out for frame in frames for out in line(frame))
        if data:
            dst.receive_data(data, self.now)
        return bool(frames)

    def exchange(self, max_bytes: int | None = None) -> bool:
        """One round each way; True if anything was sent."""
        moved = self._carry(self.a, self.b, "a", self.a_to_b, max_bytes)
        moved |= self._carry(self.b, self.a, "b", self.b_to_a, max_bytes)
        return moved

    def drain(self) -> None:
        for name, link in (("a", self.a), ("b", self.b)):
            while (event := link.next_event()) is not NEED_DATA:
                self.events[name].append(event)

    def tick(self, dt: float) -> None:
        self.now += dt
        for link in (self.a, self.b):
            deadline = link.next_deadline()
            if deadline is not None and deadline <= self.now:
                link.handle_timeout(self.now)

    def settle(self, limit: int = 10_000) -> None:
        """Exchange until both sides are quiet, without letting time pass."""
        for _ in range(limit):
            if not self.exchange():
                return
        raise AssertionError("the line never went quiet")

    def run(self, seconds: float, dt: float = 0.01, drain: bool = True) -> None:
        """Let simulated time pass, exchanging after every step."""
        end = self.now + seconds
        while self.now < end:
            self.tick(dt)
            self.settle()
            if drain:
                self.drain()

    def run_until(self, done: Callable[[], bool], seconds: float = 60.0, dt: float = 0.01) -> None:
        end = self.now + seconds
        while not done():
            if self.now >= end:
                raise AssertionError(f"not done after {seconds} simulated seconds")
            self.tick(dt)
            self.settle()
            self.drain()

    def messages(self, name: str) -> list[bytes]:
        return [e.payload for e in self.events[name] if isinstance(e, MessageReceived)]
