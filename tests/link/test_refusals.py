"""Limits below the protocol's minimums, refusals with a reason, and acks for frames never sent.

A side refuses a peer whose SYNC announces limits it cannot work with, and a
peer that breaks a rule it agreed to: one RESET carries the reason, the
refusing link ends (its user opens the next one), and the refused peer's link
fails with a typed error instead of waiting out its handshake timeout.
"""

import pytest

from genode_cr.link import (
    MIN_MESSAGE_LIMIT,
    MIN_PAYLOAD_LIMIT,
    NEED_DATA,
    BlockingLink,
    Flag,
    Frame,
    FrameKind,
    Link,
    LinkRefused,
    LinkState,
    PeerClosed,
    RemoteLinkError,
    encode_frame,
    memory_pair,
)
from genode_cr.link._link import MAX_REASON, SYNC_PAYLOAD

from ._pair import DEFAULTS, SimPair, parse, wire_frames

PEER = 0x5EE5


def sync(max_payload: int, max_message: int, epoch: int = PEER, peer_epoch: int = 0) -> bytes:
    payload = SYNC_PAYLOAD.pack(max_payload, max_message)
    return b"\x00" + encode_frame(Frame(kind=FrameKind.SYNC, epoch=epoch, peer_epoch=peer_epoch, payload=payload))


def sent_frames(link: Link, now: float = 0.0) -> list[Frame]:
    return [f for f in map(parse, wire_frames(link.data_to_send(now))) if f is not None]


def open_pair(**options) -> SimPair:
    pair = SimPair(**options)
    pair.settle()
    pair.drain()
    assert pair.a.state is pair.b.state is LinkState.OPEN
    return pair


# ---- a SYNC below the minimums is refused, with its reason ---------------------------


@pytest.mark.parametrize(
    "max_payload, max_message, reason",
    [
        (MIN_PAYLOAD_LIMIT - 1, 1 << 20, f"max_payload 31 < min {MIN_PAYLOAD_LIMIT}"),
        (8, 1 << 20, "max_payl"),  # the reason is cut to what the peer accepts
        (1024, 100, f"max_message 100 < min {MIN_MESSAGE_LIMIT}"),
        (1024, MIN_MESSAGE_LIMIT - 1, f"max_message {MIN_MESSAGE_LIMIT - 1} < min {MIN_MESSAGE_LIMIT}"),
    ],
)
def test_sync_below_the_minimums_is_refused_with_a_reset_naming_it(max_payload, max_message, reason):
    link = Link(epoch=1, **DEFAULTS)
    assert [f.kind for f in sent_frames(link)] == [FrameKind.SYNC]
    link.receive_data(sync(max_payload, max_message), 0.0)
    assert link.state is LinkState.ERROR
    with pytest.raises(RemoteLinkError, match="below the protocol's"):
        link.next_event()
    # Not answered with a SYNC: one RESET to the refused epoch, and nothing after it.
    (reset,) = sent_frames(link)
    assert (reset.kind, reset.epoch, reset.peer_epoch) == (FrameKind.RESET, 1, PEER)
    assert reset.payload.decode() == reason
    assert len(reset.payload) <= min(max_payload, MAX_REASON)
    assert link.data_to_send(1.0) == b"" and link.next_deadline() is None


def test_sync_at_the_minimums_is_accepted():
    link = Link(epoch=1, **DEFAULTS)
    link.data_to_send(0.0)
    link.receive_data(sync(MIN_PAYLOAD_LIMIT, MIN_MESSAGE_LIMIT), 0.0)
    assert link.state is LinkState.HANDSHAKE and link.error is None
    assert [(f.kind, f.peer_epoch) for f in sent_frames(link)] == [(FrameKind.SYNC, PEER)]


def test_refused_peer_fails_with_a_typed_error_and_the_reason():
    pair = SimPair()
    # a does not keep to the protocol: it announces less than the minimum
    # (the constructor refuses that, so the attribute is set behind its back).
    pair.a.max_message = 100
    pair.settle()
    assert pair.a.state is pair.b.state is LinkState.ERROR
    with pytest.raises(LinkRefused, match=f"refused by the peer: max_message 100 < min {MIN_MESSAGE_LIMIT}"):
        pair.a.next_event()
    with pytest.raises(RemoteLinkError, match="max_message 100"):
        pair.b.next_event()
    # a spoke first: b answered its SYNC with the RESET alone, and a answered nothing.
    assert [f.kind for f in map(parse, pair.sent["a"]) if f] == [FrameKind.SYNC]
    assert [f.kind for f in map(parse, pair.sent["b"]) if f] == [FrameKind.RESET]


def test_refusal_reaches_a_peer_that_already_knows_the_refusing_side():
    b = Link(epoch=0xB, **DEFAULTS)
    a = Link(epoch=0xA, **DEFAULTS)
    a.max_message = 100
    a.receive_data(b.data_to_send(0.0), 0.0)  # a learns b first
    assert a.peer_epoch == 0xB and a.state is LinkState.HANDSHAKE
    b.receive_data(a.data_to_send(0.0), 0.0)
    a.receive_data(b.data_to_send(0.0), 0.0)
    with pytest.raises(LinkRefused, match="max_message 100"):
        a.next_event()


def test_reset_with_a_reason_for_someone_else_is_only_stale():
    link = Link(epoch=1, **DEFAULTS)
    link.data_to_send(0.0)
    for peer_epoch in (2, 0):
        reset = Frame(kind=FrameKind.RESET, epoch=PEER, peer_epoch=peer_epoch, payload=b"go away")
        link.receive_data(encode_frame(reset), 0.0)
    assert link.state is LinkState.HANDSHAKE and link.stats.dropped_stale == 2
    assert link.next_event() is NEED_DATA


def test_reset_with_a_reason_while_open_ends_only_the_session():
    pair = open_pair()
    a, b = pair.a, pair.b
    reset = Frame(kind=FrameKind.RESET, epoch=b.our_epoch, peer_epoch=a.our_epoch, payload=b"message over the limit")
    a.receive_data(encode_frame(reset), pair.now)
    assert a.next_event() == PeerClosed(epoch=b.our_epoch, lost_messages=0, reason="message over the limit")
    assert a.state is LinkState.HANDSHAKE and a.error is None


def test_blocking_open_reports_the_refusal_not_the_hang_up_after_it():
    ours, theirs = memory_pair()
    link = BlockingLink(ours, **DEFAULTS)
    try:
        reason = f"max_message 100 < min {MIN_MESSAGE_LIMIT}".encode()
        refusal = Frame(kind=FrameKind.RESET, epoch=PEER, peer_epoch=link.link.our_epoch, payload=reason)
        theirs.write(encode_frame(refusal))
        theirs.close()  # the refusing board hangs up at once, as a TCP board does
        with pytest.raises(LinkRefused, match="max_message 100"):
            link.wait_established(5)
        with pytest.raises(LinkRefused):
            link.send(b"x", timeout=1)
    finally:
        link.close()


# ---- acks for frames never sent -------------------------------------------------------


def bogus_ack(pair: SimPair, flags: Flag = Flag.NONE, ack: int = 1000) -> bytes:
    frame = Frame(kind=FrameKind.ACK, flags=flags, epoch=pair.b.our_epoch, peer_epoch=pair.a.our_epoch, ack=ack)
    return encode_frame(frame)


def test_ack_for_frames_never_sent_is_not_answered():
    pair = open_pair()
    a = pair.a
    a.receive_data(bogus_ack(pair, Flag.PROBE), pair.now)
    assert a.stats.bad_acks == 1
    assert a.data_to_send(pair.now) == b"", "a probe with a bogus ack was answered"
    # A real probe is answered.
    a.receive_data(bogus_ack(pair, Flag.PROBE, ack=0), pair.now)
    assert [f.kind for f in sent_frames(a, pair.now)] == [FrameKind.ACK]


def test_acks_for_frames_never_sent_keep_no_link_alive():
    pair = open_pair(keepalive=1.0, dead_after=3.0)
    pair.b_to_a = lambda frame: []  # b goes silent; a forger keeps sending bogus acks
    while pair.a.state is LinkState.OPEN and pair.now < 10.0:
        pair.a.receive_data(bogus_ack(pair, Flag.PROBE), pair.now)
        pair.run(0.25, drain=False)
    assert pair.a.state is LinkState.DEAD
    assert pair.now < 4.0, "bogus acks counted as signs of life"


def test_ack_for_frames_never_sent_does_not_establish():
    a = Link(epoch=0xA, **DEFAULTS)
    a.data_to_send(0.0)
    a.receive_data(sync(1024, 1 << 20, epoch=0xB, peer_epoch=0), 0.0)
    a.data_to_send(0.0)
    ack = Frame(kind=FrameKind.ACK, epoch=0xB, peer_epoch=0xA, ack=5)
    a.receive_data(encode_frame(ack), 0.0)
    assert a.state is LinkState.HANDSHAKE and a.next_event() is NEED_DATA
    assert a.data_to_send(0.0) == b"" and a.stats.bad_acks == 1


def test_data_with_an_ack_for_frames_never_sent_is_not_taken():
    pair = open_pair()
    a, b = pair.a, pair.b
    forged = Frame(kind=FrameKind.DATA, flags=Flag.END, epoch=b.our_epoch, peer_epoch=a.our_epoch, seq=0, ack=77, payload=b"forged")
    a.receive_data(encode_frame(forged), pair.now)
    assert a.next_event() is NEED_DATA and a.stats.bad_acks == 1
    b.send_message(b"real")
    pair.settle()
    pair.drain()
    assert pair.messages("a") == [b"real"]
