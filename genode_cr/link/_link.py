"""The link core: bytes and time in, events and bytes out.

Nothing here reads a clock, sleeps, opens a port or starts a thread.  Every
call that depends on time takes ``now`` (seconds on any monotonic clock the
caller likes), which is what lets the tests drive hours of retransmissions in
microseconds and lets the C++ board side be checked against the same rules.

Session rules, in one place (docs/link-protocol.md has the long form):

1. A session is a pair of epochs.  A frame other than SYNC is used only if its
   epoch is the peer's and its peer_epoch is ours; anything else is a leftover
   of an earlier session and is dropped.
2. Only SYNC introduces an epoch.  Our own epoch coming back is an echo, not
   a peer.  A new epoch while open means the peer restarted: both directions
   start over at sequence 0 and everything unacknowledged is reported lost.
3. We are established once the peer proves it knows our epoch: a SYNC naming
   it, or any other frame of the session.  A SYNC that does not name our
   epoch is answered with a SYNC; one that does, with an ACK.
4. The line keeps order, so once established, a SYNC from the same peer that
   does not name us, or that comes after traffic flowed, means the peer
   dropped the session: we drop it too (PeerRestarted with old == new epoch).
5. DATA flows only while established.
6. A peer whose SYNC announces limits below the protocol's minimums, or that
   breaks a rule it agreed to, ends the link: we send one RESET carrying the
   reason and fail.  A RESET with a reason that names us while we handshake is
   such a refusal of us.
7. A frame whose ack names frames we never sent is dropped whole: it proves
   nothing about the session, so it is neither heard nor answered.
"""

from __future__ import annotations

import enum
import secrets
import struct
from collections import deque

from ._deframer import Deframer
from ._errors import LinkDead, LinkError, LinkRefused, LocalLinkError, RemoteLinkError
from ._events import (
    NEED_DATA,
    Event,
    LinkEstablished,
    MessageReceived,
    NeedData,
    PeerClosed,
    PeerRestarted,
)
from ._frame import (
    MAX_PAYLOAD_LIMIT,
    MIN_PAYLOAD_LIMIT,
    Flag,
    Frame,
    FrameError,
    FrameKind,
    decode_frame,
    encode_frame,
    max_wire_size,
)
from ._receiver import Receiver
from ._sender import Sender
from ._stats import LinkStats

__all__ = ["Link", "LinkState", "MIN_MESSAGE_LIMIT", "MAX_REASON", "SYNC_PAYLOAD", "random_epoch"]

#: SYNC payload: the largest DATA payload and the largest message we accept.
SYNC_PAYLOAD = struct.Struct("<HI")

#: The smallest max_message a side may announce.  Every answer a board gives
#: but a checkpoint's manifest (a BoardInfo, one page of a checkpoint stream, a
#: batch of log lines, an error) fits in it with room to spare, so an agent at
#: the minimum can work with any board; a board could not even say hello to
#: much less.  A board keeps a reassembly buffer of its own limit, at least this.
MIN_MESSAGE_LIMIT = 64 << 10

#: Longest reason a RESET carries; it is cut further to the receiver's max_payload,
#: or the receiver would drop it as oversize.
MAX_REASON = 200


def _limits_problem(max_payload: int, max_message: int) -> str | None:
    """Why a side announcing these limits cannot take part, or None if it can.

    Terse, so that the reason fits the payload of a refused peer's RESET
    (the minimum max_payload, or less: it is what the peer announced).
    """
    if max_payload < MIN_PAYLOAD_LIMIT:
        return f"max_payload {max_payload} < min {MIN_PAYLOAD_LIMIT}"
    if max_message < MIN_MESSAGE_LIMIT:
        return f"max_message {max_message} < min {MIN_MESSAGE_LIMIT}"
    return None


def random_epoch() -> int:
    """A fresh epoch for a side that is starting: random, never 0.

    Not called by Link itself, so that tests and the fuzzer can pin epochs.
    """
    return secrets.randbits(32) or 1


class LinkState(enum.Enum):
    HANDSHAKE = "handshake"  #: waiting for the peer to confirm our epoch
    OPEN = "open"  #: established; DATA flows
    CLOSED = "closed"  #: closed by us
    DEAD = "dead"  #: the peer stopped answering (LinkDead)
    ERROR = "error"  #: a fatal protocol violation (RemoteLinkError / LocalLinkError)


class Link:
    """One end of a board link, without any I/O.

    Args:
        epoch: this side's link epoch, 1 .. 2**32-1.  Pick it at random every
            time the side starts (``secrets.randbits(32) or 1``): the peer
            detects a restart by seeing it change.
        window: most DATA frames sent and not yet acknowledged.
        max_payload: largest DATA payload this side accepts (announced in SYNC);
            fragments we send are cut to the smaller of this and the peer's.
        max_message: largest message this side accepts (announced in SYNC).
        rto: retransmission timeout; doubled on each timeout in a row, up to max_rto.
        max_rto: backoff ceiling; default 4 * rto.
        dead_after: seconds without an acknowledgement while data is outstanding
            (or, with keepalive, without any frame from the peer) before LinkDead.
        handshake_timeout: seconds in HANDSHAKE before LinkDead; None waits
            forever (a board waiting for its agent).
        keepalive: probe the peer after this many quiet seconds so that a dead
            peer is noticed on an idle link; None turns probing off.
        max_pending: received bytes waiting in next_event() beyond which new
            DATA is refused (not acknowledged) until the user catches up.
    """

    def __init__(
        self,
        *,
        epoch: int,
        window: int = 32,
        max_payload: int = 1024,
        max_message: int = 1 << 20,
        rto: float = 0.5,
        max_rto: float | None = None,
        dead_after: float = 10.0,
        handshake_timeout: float | None = 10.0,
        keepalive: float | None = 2.0,
        max_pending: int = 4 << 20,
    ) -> None:
        if not 0 < epoch < 1 << 32:
            raise ValueError(f"epoch must be in 1 .. 2**32-1, not {epoch}")
        if not MIN_PAYLOAD_LIMIT <= max_payload <= MAX_PAYLOAD_LIMIT:
            raise ValueError(
                f"max_payload must be in {MIN_PAYLOAD_LIMIT} .. {MAX_PAYLOAD_LIMIT}, not {max_payload}"
            )
        if not 1 <= window < 1 << 31:
            raise ValueError(f"window must be in 1 .. 2**31-1, not {window}")
        if not MIN_MESSAGE_LIMIT <= max_message < 1 << 32:
            raise ValueError(f"max_message must be in {MIN_MESSAGE_LIMIT} .. 2**32-1, not {max_message}")
        if rto <= 0 or dead_after <= rto:
            raise ValueError("need 0 < rto < dead_after")
        self.our_epoch = epoch
        self.peer_epoch = 0
        self.max_payload = max_payload
        self.max_message = max_message
        self.rto = rto
        self.max_rto = max_rto if max_rto is not None else 4 * rto
        self.dead_after = dead_after
        self.handshake_timeout = handshake_timeout
        self.keepalive = keepalive
        self.max_pending = max_pending
        self.state = LinkState.HANDSHAKE
        self.stats = LinkStats()
        self.peer_max_payload: int | None = None
        self.peer_max_message: int | None = None

        self._deframer = Deframer(max_wire_size(max_payload) - 1)
        self._sender = Sender(window, max_payload)
        self._receiver = Receiver(max_message, self.stats)
        self._events: deque[Event] = deque()
        self._pending = 0  # payload bytes of MessageReceived still in _events
        self._error: LinkError | None = None

        self._sync_pending = True
        self._sync_at: float | None = None
        self._sync_backoff = rto
        self._handshake_since: float | None = None  # set by the first call that brings `now`
        self._rto_at: float | None = None
        self._rto_current = rto
        self._progress_at: float | None = None
        self._heard_at: float | None = None
        self._probe_at: float | None = None
        self._probe_pending = False
        # A RESET to send: (the epoch it goes to, its reason as payload).
        self._reset: tuple[int, bytes] | None = None

    # ---- what the user drives ------------------------------------------------------

    @property
    def error(self) -> LinkError | None:
        """Why the link failed (state DEAD or ERROR), else None."""
        return self._error

    @property
    def receive_buffered(self) -> int:
        """Bytes held on the receiving side: partial frame, partial message, undelivered messages.

        Whatever arrives, it stays below max_wire_size(max_payload) + max_message
        + max_pending: DATA is refused while max_pending is reached, and the
        message a frame completes adds at most max_message.
        """
        return self._deframer.buffered + self._receiver.assembling + self._pending

    @property
    def send_buffered(self) -> int:
        """Payload bytes accepted by send_message() and not yet acknowledged."""
        return self._sender.buffered

    def send_message(self, payload: bytes) -> None:
        """Queue one message; it goes out, fragmented, once the link is open.

        Raises:
            LocalLinkError: the link was closed, or the message is larger than
                the peer announced it accepts.
            LinkDead, RemoteLinkError: the link has already failed.
        """
        self._raise_if_failed()
        if self.state is LinkState.CLOSED:
            raise LocalLinkError("send on a closed link")
        if self.peer_max_message is not None and len(payload) > self.peer_max_message:
            raise LocalLinkError(
                f"message of {len(payload)} bytes over the peer's limit of {self.peer_max_message}"
            )
        self._sender.queue(bytes(payload))
        self.stats.messages_sent += 1

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes read from the line, in any chunking."""
        if self.state not in (LinkState.HANDSHAKE, LinkState.OPEN):
            return
        self._note_time(now)
        self.stats.bytes_received += len(data)
        deframer = self._deframer
        oversize, garbage = deframer.oversize_blocks, deframer.discarded_bytes
        blocks = deframer.feed(data)
        self.stats.dropped_oversize += deframer.oversize_blocks - oversize
        self.stats.garbage_bytes += deframer.discarded_bytes - garbage
        for block in blocks:
            try:
                frame = decode_frame(block, self.max_payload)
            except FrameError as exc:
                self.stats.count_drop(exc.reason)
                continue
            self.stats.frames_received += 1
            try:
                self._on_frame(frame, now)
            except LinkRefused as exc:
                self._fail(LinkState.ERROR, exc)  # the peer ended it; nothing to answer
            except RemoteLinkError as exc:
                # Tell the peer why, or it would only find a silent line.
                self._end(exc, to=self.peer_epoch, room=self.peer_max_payload, reason=str(exc))
            except LinkError as exc:
                self._end(exc, to=self.peer_epoch)  # our own fault: a plain close
            if self._error is not None:
                return

    def next_event(self) -> Event | NeedData:
        """The next event, or NEED_DATA.

        Raises:
            LinkDead, RemoteLinkError, LocalLinkError: once the events that came
                before the failure have been returned.
        """
        if self._events:
            event = self._events.popleft()
            if isinstance(event, MessageReceived):
                self._pending -= len(event.payload)
            return event
        self._raise_if_failed()
        return NEED_DATA

    def data_to_send(self, now: float, max_bytes: int | None = None) -> bytes:
        """Bytes to write to the line now (possibly empty).

        ``max_bytes`` limits the answer to whole frames within that many bytes
        (at least one frame), so that a paced writer takes frames only as fast
        as the line carries them and their retransmission clocks stay honest.
        """
        self._note_time(now)
        out = bytearray()
        self._fill(out, now, max_bytes)
        self.stats.bytes_sent += len(out)
        return bytes(out)

    def _fill(self, out: bytearray, now: float, max_bytes: int | None) -> None:
        def room(payload: int) -> bool:
            return max_bytes is None or not out or len(out) + max_wire_size(payload) <= max_bytes

        if self._reset is not None:
            to, reason = self._reset
            self._reset = None
            self._emit(out, FrameKind.RESET, Flag.NONE, payload=reason, peer_epoch=to)
        if self.state not in (LinkState.HANDSHAKE, LinkState.OPEN):
            return
        if self._sync_pending:
            self._sync_pending = False
            # The leading 0x00 ends whatever torn frame may precede it on the
            # line, so that the SYNC is not glued to it and lost as well.
            out.append(0)
            payload = SYNC_PAYLOAD.pack(self.max_payload, self.max_message)
            self._emit(out, FrameKind.SYNC, Flag.NONE, payload=payload)
            self.stats.syncs_sent += 1
            if self.state is LinkState.HANDSHAKE:
                self._sync_at = now + self._sync_backoff
        if self.state is not LinkState.OPEN:
            return
        sender, receiver = self._sender, self._receiver
        while sender.has_frame() and room(sender.next_frame_size()):
            if not sender.in_flight:
                self._progress_at = now
            frame, again = sender.next_frame()
            self._emit(out, FrameKind.DATA, frame.flags, seq=frame.seq, payload=frame.payload)
            self.stats.data_frames_sent += 1
            self.stats.frames_retransmitted += again
            if self._rto_at is None:
                self._rto_at = now + self._rto_current
        if receiver.ack_pending or self._probe_pending:
            flags = Flag.PROBE if self._probe_pending else Flag.NONE
            self._probe_pending = False
            self._emit(out, FrameKind.ACK, flags)
            self.stats.acks_sent += 1

    def next_deadline(self) -> float | None:
        """When handle_timeout() should be called next, or None if no timer runs."""
        times: list[float] = []
        if self.state is LinkState.HANDSHAKE:
            if self._sync_at is not None:
                times.append(self._sync_at)
            if self.handshake_timeout is not None and self._handshake_since is not None:
                times.append(self._handshake_since + self.handshake_timeout)
        elif self.state is LinkState.OPEN:
            if self._rto_at is not None:
                times.append(self._rto_at)
            if self._sender.in_flight and self._progress_at is not None:
                times.append(self._progress_at + self.dead_after)
            if self.keepalive is not None and self._heard_at is not None:
                times.append(self._heard_at + self.dead_after)
                if self._probe_at is not None:
                    times.append(self._probe_at)
        return min(times) if times else None

    def handle_timeout(self, now: float) -> None:
        """Run the timers that are due at ``now``; calling it early is harmless."""
        self._note_time(now)
        if self.state is LinkState.HANDSHAKE:
            since = self._handshake_since
            if self.handshake_timeout is not None and since is not None:
                if now >= since + self.handshake_timeout:
                    self._die(f"no handshake with the peer within {self.handshake_timeout:g} s")
                    return
            if self._sync_at is not None and now >= self._sync_at:
                self._sync_at = None
                self._sync_pending = True
                self._sync_backoff = min(2 * self._sync_backoff, self.max_rto)
        elif self.state is LinkState.OPEN:
            if self._sender.in_flight and self._progress_at is not None:
                if now >= self._progress_at + self.dead_after:
                    self._die(f"nothing acknowledged for {self.dead_after:g} s despite retransmissions")
                    return
            if self.keepalive is not None and self._heard_at is not None:
                if now >= self._heard_at + self.dead_after:
                    self._die(f"nothing heard from the peer for {self.dead_after:g} s")
                    return
            if self._rto_at is not None and now >= self._rto_at:
                if self._sender.rewind():
                    self.stats.timeouts += 1
                    self._rto_current = min(2 * self._rto_current, self.max_rto)
                    self._rto_at = now + self._rto_current
                else:
                    self._rto_at = None
            if self._probe_at is not None and now >= self._probe_at:
                self._probe_pending = True
                self._probe_at = now + self.rto

    def close(self) -> None:
        """End the session; the next data_to_send() carries a RESET telling the peer."""
        if self.state in (LinkState.HANDSHAKE, LinkState.OPEN):
            if self.peer_epoch:
                self._reset = (self.peer_epoch, b"")
            self.state = LinkState.CLOSED

    # ---- frames from the peer ------------------------------------------------------

    def _on_frame(self, frame: Frame, now: float) -> None:
        if frame.kind is FrameKind.SYNC:
            self._on_sync(frame, now)
            return
        if (
            frame.kind is FrameKind.RESET
            and frame.payload
            and self.state is LinkState.HANDSHAKE
            and frame.peer_epoch == self.our_epoch
            and frame.epoch not in (0, self.our_epoch)
        ):
            # A refusal of our SYNC.  It may come from an epoch we never learnt
            # (a refusing side answers no SYNC), but it names ours, which only a
            # side that heard us can know.
            raise LinkRefused(f"board link refused by the peer: {_reason_text(frame.payload)}")
        if (
            self.peer_epoch == 0
            or frame.epoch != self.peer_epoch
            or frame.peer_epoch != self.our_epoch
        ):
            self.stats.dropped_stale += 1
            return
        if frame.kind is FrameKind.RESET:
            self._heard(now)
            if self.state is LinkState.OPEN:
                lost = self._reset_session(now)
                self._events.append(
                    PeerClosed(epoch=self.peer_epoch, lost_messages=lost, reason=_reason_text(frame.payload))
                )
            self.peer_epoch = 0
            self.peer_max_payload = self.peer_max_message = None
            return
        if self._sender.acknowledges(frame.ack) is None:
            # It acknowledges frames we never sent: not a frame of this session
            # as we know it, whatever its epochs say.  Ignored as a whole, so it
            # keeps nothing alive, establishes nothing and gets no answer.
            self.stats.bad_acks += 1
            return
        self._heard(now)
        if self.state is LinkState.HANDSHAKE:
            self._establish(now)
        self._on_ack(frame, now)
        if frame.kind is FrameKind.DATA:
            message = self._receiver.on_data(frame, room=self._pending < self.max_pending)
            if message is not None:
                self._events.append(MessageReceived(payload=message))
                self._pending += len(message)
                self.stats.messages_received += 1
        elif frame.flags & Flag.PROBE:
            self._receiver.ack_pending = True

    def _on_sync(self, frame: Frame, now: float) -> None:
        if len(frame.payload) < SYNC_PAYLOAD.size or frame.epoch == 0:
            self.stats.dropped_length += 1
            return
        if frame.epoch == self.our_epoch:
            # Our own SYNC came back: the line echoes (a tty left in cooked
            # mode, a loopback plug).  Talking to ourselves must not "work".
            self.stats.dropped_echo += 1
            return
        max_payload, max_message = SYNC_PAYLOAD.unpack_from(frame.payload)
        problem = _limits_problem(max_payload, max_message)
        if problem is not None:
            # Refused during the handshake, with the reason in a RESET to the
            # epoch of this SYNC (which we never answer), cut to fit what it accepts.
            self._end(
                RemoteLinkError(f"refused a peer announcing limits below the protocol's: {problem}"),
                to=frame.epoch,
                room=max_payload,
                reason=problem,
            )
            return
        self._heard(now)
        if frame.epoch != self.peer_epoch:
            if self.state is LinkState.OPEN:
                lost = self._reset_session(now)
                self._events.append(
                    PeerRestarted(old_epoch=self.peer_epoch, new_epoch=frame.epoch, lost_messages=lost)
                )
            # In HANDSHAKE nothing was sent to the old epoch yet, so nothing was lost.
            self.peer_epoch = frame.epoch
            self.peer_max_payload, self.peer_max_message = max_payload, max_message
        elif self.state is LinkState.OPEN and (
            frame.peer_epoch != self.our_epoch or self._sender.base or self._receiver.expected
        ):
            # Same peer, handshaking again after traffic flowed: it dropped the
            # session (a stale SYNC made it believe we had restarted, say).  The
            # line keeps order, so this is not a leftover of our own handshake.
            # Start over too, or its sequence numbers and ours never meet again.
            lost = self._reset_session(now)
            self._events.append(
                PeerRestarted(old_epoch=self.peer_epoch, new_epoch=self.peer_epoch, lost_messages=lost)
            )
        if frame.peer_epoch != self.our_epoch:
            self._sync_pending = True
        elif self.state is LinkState.HANDSHAKE:
            self._establish(now)
        else:
            # It asks again before any traffic: only our confirmation was lost.
            self._receiver.ack_pending = True

    def _on_ack(self, frame: Frame, now: float) -> None:
        sender = self._sender
        advanced = sender.on_ack(frame.ack)  # checked by _on_frame: never None here
        if advanced:
            self._progress_at = now
            self._rto_current = self.rto
            self._rto_at = now + self.rto if sender.in_flight else None
        if frame.flags & Flag.NAK:
            sender.on_nak(frame.ack)

    # ---- session state -------------------------------------------------------------

    def _establish(self, now: float) -> None:
        assert self.peer_max_payload is not None and self.peer_max_message is not None
        for message in self._sender.queued_messages():
            if len(message) > self.peer_max_message:
                raise LocalLinkError(
                    f"a message of {len(message)} bytes was queued before the handshake; "
                    f"the peer accepts at most {self.peer_max_message}"
                )
        self.state = LinkState.OPEN
        self._sender.max_payload = min(self.max_payload, self.peer_max_payload)
        self._sync_pending = False
        self._sync_at = None
        self._sync_backoff = self.rto
        self._receiver.ack_pending = True
        self._events.append(
            LinkEstablished(
                peer_epoch=self.peer_epoch,
                peer_max_payload=self.peer_max_payload,
                peer_max_message=self.peer_max_message,
            )
        )

    def _reset_session(self, now: float) -> int:
        """Forget both directions of the session; return how many of our messages were lost."""
        lost = self._sender.lost_messages()
        self._sender.reset()
        self._receiver.reset()
        self.state = LinkState.HANDSHAKE
        self._handshake_since = now
        self._sync_pending = True
        self._sync_at = None
        self._sync_backoff = self.rto
        self._rto_at = self._progress_at = None
        self._rto_current = self.rto
        self._probe_pending = False
        return lost

    def _heard(self, now: float) -> None:
        self._heard_at = now
        if self.keepalive is not None:
            self._probe_at = now + self.keepalive

    def _note_time(self, now: float) -> None:
        if self._handshake_since is None:
            self._handshake_since = now
            self._heard(now)

    def _emit(
        self,
        out: bytearray,
        kind: FrameKind,
        flags: Flag,
        *,
        seq: int | None = None,
        payload: bytes = b"",
        peer_epoch: int | None = None,
    ) -> None:
        receiver = self._receiver
        if kind is FrameKind.SYNC:
            seq, ack = 0, 0  # a SYNC belongs to no numbered stream
        else:
            seq = self._sender.next_seq if seq is None else seq
            ack = receiver.expected
            # Every other kind carries our ack, so whatever was owed is paid.
            receiver.ack_pending = False
            if receiver.nak_pending:
                flags |= Flag.NAK
                receiver.nak_pending = False
                self.stats.naks_sent += 1
        wire = encode_frame(
            Frame(
                kind=kind,
                flags=flags,
                epoch=self.our_epoch,
                peer_epoch=self.peer_epoch if peer_epoch is None else peer_epoch,
                seq=seq,
                ack=ack,
                payload=payload,
            )
        )
        out += wire
        self.stats.frames_sent += 1

    def _fail(self, state: LinkState, error: LinkError) -> None:
        self.state = state
        self._error = error

    def _end(self, error: LinkError, *, to: int, room: int | None = None, reason: str = "") -> None:
        """Fail for good, with one RESET to epoch ``to`` (if known) carrying ``reason``
        cut to ``room`` bytes, the largest payload that side accepts."""
        if to:
            limit = MAX_REASON if room is None else max(0, min(MAX_REASON, room))
            self._reset = (to, reason.encode("utf-8")[:limit])
        self._fail(LinkState.ERROR, error)

    def _die(self, reason: str) -> None:
        self._fail(LinkState.DEAD, LinkDead(f"board link dead: {reason} ({self.stats.summary()})"))

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def __repr__(self) -> str:
        return (
            f"<Link {self.state.value} epoch={self.our_epoch:#010x} peer={self.peer_epoch:#010x} "
            f"next_seq={self._sender.next_seq} expected={self._receiver.expected}>"
        )


def _reason_text(payload: bytes) -> str:
    # Cut to fit a frame, the text may end inside a character.
    return payload.decode("utf-8", "replace")
