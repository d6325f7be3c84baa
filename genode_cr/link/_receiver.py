"""The receiving half: in-order acceptance, duplicate suppression, reassembly.

Go-back-N lets the receiver keep nothing but the message it is assembling: a
frame is taken only if it is the very next one, so a duplicate and a frame
after a hole are both simply dropped.  A serial line never reorders, so a
frame after a hole means the hole was lost; one NAK per hole asks the sender
to go back at once instead of at its retransmission timeout.
"""

from __future__ import annotations

from ._errors import RemoteLinkError
from ._frame import Flag, Frame
from ._sender import SEQ_MOD
from ._stats import LinkStats

__all__ = ["Receiver"]


class Receiver:
    def __init__(self, max_message: int, stats: LinkStats) -> None:
        self.max_message = max_message
        self._stats = stats
        self._parts: list[bytes] = []
        self._size = 0
        self._nak_for: int | None = None
        #: Sequence number we expect next; the ack field of every frame we send.
        self.expected = 0
        #: The peer should hear our ack soon (set on every DATA, accepted or not).
        self.ack_pending = False
        #: The next frame we send should carry NAK.
        self.nak_pending = False

    @property
    def assembling(self) -> int:
        return self._size

    def on_data(self, frame: Frame, room: bool) -> bytes | None:
        """Take one DATA frame; return the message it completes, if any."""
        ahead = (frame.seq - self.expected) % SEQ_MOD
        if ahead:
            if ahead < SEQ_MOD // 2:
                self._stats.dropped_out_of_order += 1
                if self._nak_for != self.expected:
                    self._nak_for = self.expected
                    self.nak_pending = self.ack_pending = True
            else:
                # Our ack for it was lost or is late; repeat it so the sender stops resending.
                self._stats.dropped_duplicate += 1
                self.ack_pending = True
            return None
        self.ack_pending = True
        if not room:
            # Not acknowledged, so the sender keeps it and retries: backpressure.
            self._stats.dropped_busy += 1
            return None
        if self._size + len(frame.payload) > self.max_message:
            raise RemoteLinkError(
                f"peer sent a message over the announced limit of {self.max_message} bytes"
            )
        self.expected = (self.expected + 1) % SEQ_MOD
        self._parts.append(frame.payload)
        self._size += len(frame.payload)
        if not frame.flags & Flag.END:
            return None
        message = b"".join(self._parts)
        self._parts.clear()
        self._size = 0
        return message

    def reset(self) -> None:
        self._parts.clear()
        self._size = 0
        self._nak_for = None
        self.expected = 0
        self.ack_pending = self.nak_pending = False
