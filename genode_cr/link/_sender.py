"""The sending half: message queue, fragmentation and the go-back-N window.

Messages are cut into DATA frames only when a frame may actually go out.  That
way the fragment size can follow the peer's limit learnt at the handshake, and
a frame's retransmission clock starts when the transport really takes it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ._frame import Flag

__all__ = ["Sender", "Outgoing", "SEQ_MOD"]

SEQ_MOD = 1 << 32


@dataclass(frozen=True, slots=True)
class Outgoing:
    seq: int
    flags: Flag
    payload: bytes


class Sender:
    def __init__(self, window: int, max_payload: int) -> None:
        self.window = window
        #: Fragment size; the link lowers it to the peer's limit at the handshake.
        self.max_payload = max_payload
        self._queue: deque[bytes] = deque()  # messages not yet wholly cut into frames
        self._offset = 0  # how much of _queue[0] has been cut
        self._unacked: deque[Outgoing] = deque()  # sent at least once, oldest first
        self._cursor = 0  # _unacked[:_cursor] went out since the last rewind
        self._rewound_base: int | None = None
        self.next_seq = 0
        #: Payload bytes queued or unacknowledged: what a transport throttles on.
        self.buffered = 0

    @property
    def base(self) -> int:
        """Sequence number of the oldest unacknowledged frame (or the next new one)."""
        return self._unacked[0].seq if self._unacked else self.next_seq

    @property
    def in_flight(self) -> bool:
        return bool(self._unacked)

    def queued_messages(self) -> list[bytes]:
        return list(self._queue)

    def lost_messages(self) -> int:
        """Messages not wholly acknowledged: what a reset throws away."""
        return sum(1 for f in self._unacked if f.flags & Flag.END) + len(self._queue)

    def queue(self, message: bytes) -> None:
        self._queue.append(message)
        self.buffered += len(message)

    def has_frame(self) -> bool:
        return self._cursor < len(self._unacked) or (
            bool(self._queue) and len(self._unacked) < self.window
        )

    def next_frame_size(self) -> int:
        """Payload size of the frame next_frame() would return (for output budgeting)."""
        if self._cursor < len(self._unacked):
            return len(self._unacked[self._cursor].payload)
        return min(self.max_payload, len(self._queue[0]) - self._offset)

    def next_frame(self) -> tuple[Outgoing, bool]:
        """The next frame to put on the wire, and whether it is a retransmission."""
        if self._cursor < len(self._unacked):
            frame = self._unacked[self._cursor]
            self._cursor += 1
            return frame, True
        message = self._queue[0]
        chunk = message[self._offset : self._offset + self.max_payload]
        self._offset += len(chunk)
        flags = Flag.NONE
        if self._offset >= len(message):
            # An empty message still takes one frame, so it is delivered too.
            flags = Flag.END
            self._queue.popleft()
            self._offset = 0
        frame = Outgoing(self.next_seq, flags, chunk)
        self.next_seq = (self.next_seq + 1) % SEQ_MOD
        self._unacked.append(frame)
        self._cursor += 1
        return frame, False

    def acknowledges(self, ack: int) -> int | None:
        """How many frames ``ack`` (the peer's next expected number) releases; None if it
        names frames never sent."""
        n = (ack - self.base) % SEQ_MOD
        return n if n <= len(self._unacked) else None

    def on_ack(self, ack: int) -> int | None:
        """Drop what ``ack`` covers; None if it is bogus."""
        n = self.acknowledges(ack)
        if n is None:
            return None
        for _ in range(n):
            self.buffered -= len(self._unacked.popleft().payload)
        self._cursor = max(0, self._cursor - n)
        return n

    def rewind(self) -> bool:
        """Go back N: resend everything unacknowledged, oldest first."""
        if not self._unacked:
            return False
        self._cursor = 0
        self._rewound_base = self.base
        return True

    def on_nak(self, ack: int) -> bool:
        # One rewind per hole: a duplicated NAK, or one that crosses a
        # timeout's rewind, would otherwise send the whole window twice.
        if ack != self.base or self._rewound_base == ack or not self._cursor:
            return False
        return self.rewind()

    def reset(self) -> None:
        self._queue.clear()
        self._unacked.clear()
        self._offset = self._cursor = 0
        self._rewound_base = None
        self.next_seq = 0
        self.buffered = 0
