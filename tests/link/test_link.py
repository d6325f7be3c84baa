"""The sans-I/O core on simulated time: handshake, fragmentation, window, ARQ, epochs, death."""

import os

import pytest

from genode_cr.errors import GenodeCrError
from genode_cr.link import (
    NEED_DATA,
    Flag,
    Frame,
    FrameKind,
    Link,
    LinkDead,
    LinkError,
    LinkEstablished,
    LinkRefused,
    LinkState,
    LocalLinkError,
    MessageReceived,
    PeerClosed,
    PeerRestarted,
    RemoteLinkError,
    encode_frame,
)
from genode_cr.link import MIN_MESSAGE_LIMIT as MIN_MESSAGE
from genode_cr.link._link import SYNC_PAYLOAD

from ._pair import DEFAULTS, SimPair, parse


def kinds(frames):
    return [f.kind for f in map(parse, frames) if f is not None]


def data_frames(frames):
    return [f for f in map(parse, frames) if f is not None and f.kind is FrameKind.DATA]


def open_pair(**options) -> SimPair:
    pair = SimPair(**options)
    pair.settle()
    pair.drain()
    assert pair.a.state is pair.b.state is LinkState.OPEN
    return pair


# ---- construction and errors ----------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        dict(epoch=0),
        dict(epoch=1 << 32),
        dict(max_payload=31),
        dict(max_payload=65536),
        dict(max_message=MIN_MESSAGE - 1),
        dict(max_message=1 << 32),
        dict(window=0),
        dict(rto=5, dead_after=5),
    ],
)
def test_bad_configuration_is_refused(bad):
    with pytest.raises(ValueError):
        Link(**{"epoch": 1, **bad})


def test_error_hierarchy():
    with pytest.raises(TypeError):
        LinkError("abstract")
    for cls in (LocalLinkError, LinkRefused, RemoteLinkError, LinkDead):
        assert issubclass(cls, LinkError) and issubclass(cls, GenodeCrError)
        assert cls("x").code.startswith("link_")
    # Refused for what we announced: our side's fault, as the clients map it.
    assert issubclass(LinkRefused, LocalLinkError)


# ---- handshake ------------------------------------------------------------------------


def test_handshake_reports_the_peer_and_its_limits():
    pair = SimPair(a=Link(epoch=5, max_payload=100, max_message=MIN_MESSAGE, **DEFAULTS))
    pair.settle()
    pair.drain()
    assert pair.events["a"] == [LinkEstablished(peer_epoch=pair.b.our_epoch, peer_max_payload=1024, peer_max_message=1 << 20)]
    assert pair.events["b"] == [LinkEstablished(peer_epoch=5, peer_max_payload=100, peer_max_message=MIN_MESSAGE)]
    # SYNC, SYNC answering it, ACK confirming: three frames, then silence.
    assert kinds(pair.sent["a"] + pair.sent["b"]).count(FrameKind.SYNC) == 2


def test_handshake_survives_lost_syncs():
    pair = SimPair()
    lost = []

    def lossy(frame):
        if frame != b"\x00" and len(lost) < 3:
            lost.append(frame)
            return []
        return [frame]

    pair.a_to_b = lossy
    pair.run_until(lambda: pair.a.state is pair.b.state is LinkState.OPEN, seconds=10)
    assert kinds(lost) == [FrameKind.SYNC] * 3
    assert pair.a.stats.syncs_sent >= 4


def test_late_peer_is_found_by_retransmitted_syncs():
    pair = SimPair()
    pair.a_to_b = pair.b_to_a = lambda frame: []  # nobody there yet
    pair.run(3.0)
    assert pair.a.state is LinkState.HANDSHAKE
    pair.a_to_b = pair.b_to_a = None
    pair.run_until(lambda: pair.a.state is pair.b.state is LinkState.OPEN, seconds=5)


def test_handshake_timeout_kills_and_none_waits_forever():
    waiting = Link(epoch=1, handshake_timeout=None, keepalive=None)
    giving_up = Link(epoch=2, handshake_timeout=3.0)
    for link in (waiting, giving_up):
        link.data_to_send(0.0)
        for t in range(1, 100):
            link.handle_timeout(float(t))
            link.data_to_send(float(t))
    assert waiting.state is LinkState.HANDSHAKE and waiting.next_deadline() is not None
    assert giving_up.state is LinkState.DEAD
    with pytest.raises(LinkDead, match="no handshake"):
        giving_up.next_event()


# ---- messages, fragmentation ----------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1025, 10 * 1024 + 3])
def test_fragmentation_and_reassembly(size):
    pair = open_pair()
    message = os.urandom(size)
    pair.a.send_message(message)
    pair.settle()
    pair.drain()
    assert pair.messages("b") == [message]
    data = data_frames(pair.sent["a"])
    assert len(data) == max(1, -(-size // 1024))
    assert [bool(f.flags & Flag.END) for f in data] == [False] * (len(data) - 1) + [True]
    assert b"".join(f.payload for f in data) == message


def test_fragments_follow_the_smaller_limit_of_the_two():
    pair = SimPair(b=Link(epoch=9, max_payload=64, **DEFAULTS))
    pair.settle()
    pair.a.send_message(bytes(1000))
    pair.b.send_message(bytes(1000))
    pair.settle()
    pair.drain()
    # b accepts 64-byte payloads, and sends no larger ones than it accepts.
    assert {len(f.payload) for f in data_frames(pair.sent["a"])} == {64, 1000 % 64}
    assert {len(f.payload) for f in data_frames(pair.sent["b"])} == {64, 1000 % 64}
    assert pair.messages("a") == pair.messages("b") == [bytes(1000)]


def test_messages_sent_before_the_handshake_wait_for_it():
    pair = SimPair()
    pair.a.send_message(b"early")
    assert pair.a.data_to_send(0.0).count(b"early") == 0
    pair.settle()
    pair.drain()
    assert pair.messages("b") == [b"early"]


def test_messages_over_the_peers_limit_are_refused_locally():
    pair = open_pair(max_message=MIN_MESSAGE)
    pair.a.send_message(bytes(MIN_MESSAGE))
    with pytest.raises(LocalLinkError, match="limit"):
        pair.a.send_message(bytes(MIN_MESSAGE + 1))


def test_oversized_message_queued_before_the_handshake_fails_at_it():
    pair = SimPair(b=Link(epoch=9, max_message=MIN_MESSAGE, **DEFAULTS))
    pair.a.send_message(bytes(MIN_MESSAGE + 1))
    pair.settle()
    with pytest.raises(LocalLinkError, match="before the handshake"):
        pair.a.next_event()
    assert pair.a.state is LinkState.ERROR


def test_peer_that_exceeds_our_message_limit_is_a_remote_error_and_is_told_why():
    pair = open_pair(max_message=MIN_MESSAGE)
    a, b = pair.a, pair.b
    for seq in range(MIN_MESSAGE // 1024 + 1):  # one fragment over the limit, without END
        frame = Frame(kind=FrameKind.DATA, epoch=a.our_epoch, peer_epoch=b.our_epoch, seq=seq, payload=bytes(1024))
        b.receive_data(encode_frame(frame), pair.now)
    with pytest.raises(RemoteLinkError, match=f"limit of {MIN_MESSAGE}"):
        b.next_event()
    with pytest.raises(RemoteLinkError):
        b.send_message(b"x")
    # One RESET tells a why; a's session ends with that reason, a itself lives on.
    pair.settle()
    assert kinds(pair.sent["b"][-1:]) == [FrameKind.RESET]
    closed = a.next_event()
    assert isinstance(closed, PeerClosed) and f"limit of {MIN_MESSAGE}" in closed.reason
    assert a.state is LinkState.HANDSHAKE and a.error is None


def test_peer_announcing_a_tiny_payload_limit_is_a_remote_error():
    link = Link(epoch=1, **DEFAULTS)
    sync = Frame(kind=FrameKind.SYNC, epoch=2, payload=SYNC_PAYLOAD.pack(8, 100))
    link.receive_data(encode_frame(sync), 0.0)
    with pytest.raises(RemoteLinkError):
        link.next_event()


# ---- window and retransmission --------------------------------------------------------


def test_window_limits_unacknowledged_frames():
    pair = open_pair(window=8)
    pair.b_to_a = lambda frame: []  # no acks come back
    pair.a.send_message(bytes(100 * 1024))
    pair.settle()
    assert len(data_frames(pair.sent["a"])) == 8
    pair.b_to_a = None
    pair.run_until(lambda: len(pair.messages("b")) == 1)
    assert pair.a.stats.data_frames_sent - pair.a.stats.frames_retransmitted == 100


def test_lost_frame_is_resent_at_once_after_a_nak():
    pair = open_pair()
    dropped = []

    def drop_seq_3(frame):
        f = parse(frame)
        if f and f.kind is FrameKind.DATA and f.seq == 3 and not dropped:
            dropped.append(f)
            return []
        return [frame]

    pair.a_to_b = drop_seq_3
    messages = [os.urandom(1500) for _ in range(10)]
    for m in messages:
        pair.a.send_message(m)
    pair.settle()  # no time passes: only the NAK can have caused the resend
    pair.drain()
    assert dropped and pair.messages("b") == messages
    assert pair.b.stats.naks_sent == 1
    assert pair.a.stats.timeouts == 0 and pair.a.stats.frames_retransmitted > 0


def test_lost_last_frame_is_resent_after_the_timeout():
    pair = open_pair(rto=0.3)
    dropped = []

    def drop_first_data(frame):
        f = parse(frame)
        if f and f.kind is FrameKind.DATA and not dropped:
            dropped.append(pair.now)
            return []
        return [frame]

    pair.a_to_b = drop_first_data
    pair.a.send_message(b"only one")
    pair.settle()
    pair.run(0.25)
    assert pair.messages("b") == []
    pair.run(0.1)
    assert pair.messages("b") == [b"only one"]
    assert pair.a.stats.timeouts == 1 and pair.a.stats.frames_retransmitted == 1


def test_retransmission_timeout_backs_off():
    pair = open_pair(rto=0.1, max_rto=0.8, dead_after=60)
    pair.a_to_b = lambda frame: []
    pair.a.send_message(b"x")
    sent_at = []
    end = 5.0
    while pair.now < end:
        pair.tick(0.01)
        before = pair.a.stats.data_frames_sent
        pair.settle()
        if pair.a.stats.data_frames_sent > before:
            sent_at.append(round(pair.now, 2))
    gaps = [b - a for a, b in zip(sent_at, sent_at[1:])]
    expected = [0.1, 0.2, 0.4] + [0.8] * (len(gaps) - 3)
    assert len(gaps) >= 6
    assert gaps == pytest.approx(expected, abs=0.015)  # the simulation steps by 0.01


def test_duplicates_are_delivered_once():
    pair = open_pair()
    pair.a_to_b = lambda frame: [frame, frame]
    messages = [os.urandom(n) for n in (5, 2000, 0, 4000)]
    for m in messages:
        pair.a.send_message(m)
    pair.settle()
    pair.drain()
    assert pair.messages("b") == messages
    assert pair.b.stats.dropped_duplicate > 0


def test_lost_acks_cause_resends_that_are_suppressed():
    pair = open_pair()
    pair.b_to_a = lambda frame: []
    pair.a.send_message(os.urandom(3000))
    pair.run(1.0)
    assert len(pair.messages("b")) == 1
    assert pair.a.stats.timeouts >= 2
    pair.b_to_a = None
    pair.run(1.0)
    assert len(pair.messages("b")) == 1
    assert pair.b.stats.dropped_duplicate >= 3
    assert pair.a.send_buffered == 0


def test_ack_of_a_frame_never_sent_is_ignored():
    pair = open_pair()
    a, b = pair.a, pair.b
    bogus = Frame(kind=FrameKind.ACK, epoch=b.our_epoch, peer_epoch=a.our_epoch, ack=1000)
    a.receive_data(encode_frame(bogus), pair.now)
    assert a.stats.bad_acks == 1
    a.send_message(b"still fine")
    pair.settle()
    pair.drain()
    assert pair.messages("b") == [b"still fine"]


def test_unread_messages_push_back_on_the_sender():
    pair = open_pair(max_pending=4096)
    for _ in range(10):
        pair.a.send_message(bytes(2048))
    pair.run(1.0, drain=False)
    assert pair.b.receive_buffered <= 4096 + 2048 + 1100
    assert pair.b.stats.dropped_busy > 0
    assert pair.a.state is LinkState.OPEN
    got = 0
    while got < 10:
        pair.tick(0.05)
        pair.settle()
        while (event := pair.b.next_event()) is not NEED_DATA:
            got += isinstance(event, MessageReceived)
    assert got == 10


# ---- resync after damage --------------------------------------------------------------


def test_garbage_and_torn_frames_are_skipped():
    pair = open_pair()
    messages = [os.urandom(700) for _ in range(6)]
    for m in messages:
        pair.a.send_message(m)
    wire = pair.a.data_to_send(pair.now)
    frames = [f + b"\x00" for f in wire.split(b"\x00")[:-1]]
    torn = frames[2][: len(frames[2]) // 2]  # the sender died mid-frame
    stream = b"\xde\xad" * 50 + b"\x00" + frames[0] + frames[1] + torn + frames[3] + b"\x17\x00\x00" + b"".join(frames[4:])
    for i in range(0, len(stream), 37):  # any chunking
        pair.b.receive_data(stream[i : i + 37], pair.now)
    pair.run_until(lambda: len(pair.messages("b")) == 6)
    assert pair.messages("b") == messages
    stats = pair.b.stats
    # The leading junk, the torn frame glued to frame 3, and the stray 0x17.
    assert stats.dropped_frames >= 3


def test_endless_garbage_without_delimiter_stays_bounded():
    pair = open_pair()
    limit = pair.b.receive_buffered
    junk = bytes(range(1, 256)) * 16
    for _ in range(300):  # about 1.2 MB without a single 0x00
        pair.b.receive_data(junk, pair.now)
        assert pair.b.receive_buffered <= 2000
    assert pair.b.stats.dropped_oversize >= 1 and pair.b.stats.garbage_bytes > 1_000_000
    pair.a.send_message(b"after the storm")
    pair.run_until(lambda: pair.messages("b") == [b"after the storm"])
    assert limit == 0


def test_frame_with_payload_over_our_limit_is_dropped():
    pair = open_pair(max_payload=64)
    a, b = pair.a, pair.b
    big = Frame(kind=FrameKind.DATA, flags=Flag.END, epoch=a.our_epoch, peer_epoch=b.our_epoch, payload=bytes(65))
    b.receive_data(encode_frame(big), pair.now)
    assert b.stats.dropped_oversize == 1
    pair.drain()
    assert pair.messages("b") == []


# ---- epochs: restart, close, stale frames ----------------------------------------------


def test_peer_restart_is_reported_and_both_sides_start_over():
    pair = open_pair()
    pair.b_to_a = lambda frame: []  # b's acks are lost, then b reboots
    for n in (100, 3000, 50):
        pair.a.send_message(os.urandom(n))
    pair.settle()
    old_b = pair.b
    old_frames = list(pair.sent["a"])
    pair.b = Link(epoch=0xBBBB0002, **DEFAULTS)
    pair.b_to_a = None
    pair.settle()
    pair.drain()
    assert PeerRestarted(old_epoch=old_b.our_epoch, new_epoch=0xBBBB0002, lost_messages=3) in pair.events["a"]
    assert pair.a.state is pair.b.state is LinkState.OPEN
    assert isinstance(pair.events["a"][-1], LinkEstablished)
    # Frames of the old session reach the new b late: they must not be taken.
    for frame in old_frames:
        pair.b.receive_data(frame, pair.now)
    pair.drain()
    assert pair.messages("b") == [] and pair.b.stats.dropped_stale > 0
    pair.a.send_message(b"new session")
    pair.b.send_message(b"hello again")
    pair.settle()
    pair.drain()
    assert pair.messages("b") == [b"new session"]
    assert pair.messages("a")[-1] == b"hello again"


def test_restart_while_idle_is_reported_with_nothing_lost():
    pair = open_pair()
    pair.b = Link(epoch=0xBBBB0003, **DEFAULTS)
    pair.settle()
    pair.drain()
    assert PeerRestarted(old_epoch=0xBBBB0001, new_epoch=0xBBBB0003, lost_messages=0) in pair.events["a"]


def test_close_sends_reset_and_peer_waits_for_a_new_session():
    pair = open_pair()
    pair.b.send_message(b"unanswered")
    pair.a.close()
    assert pair.a.state is LinkState.CLOSED
    with pytest.raises(LocalLinkError):
        pair.a.send_message(b"x")
    wire = pair.a.data_to_send(pair.now)
    assert kinds([wire]) == [FrameKind.RESET]
    pair.b.receive_data(wire, pair.now)
    pair.drain()
    assert pair.events["b"][-1] == PeerClosed(epoch=0xAAAA0001, lost_messages=1)
    assert pair.b.state is LinkState.HANDSHAKE and pair.b.peer_epoch == 0
    pair.a = Link(epoch=0xAAAA0002, **DEFAULTS)
    pair.settle()
    pair.drain()
    assert pair.b.state is LinkState.OPEN and pair.b.peer_epoch == 0xAAAA0002
    assert not any(isinstance(e, PeerRestarted) for e in pair.events["b"])


def test_frames_from_strangers_are_ignored():
    pair = open_pair()
    a, b = pair.a, pair.b
    for epoch, peer_epoch in ((0x1234, b.our_epoch), (a.our_epoch, 0x1234), (0, b.our_epoch)):
        forged = Frame(kind=FrameKind.DATA, flags=Flag.END, epoch=epoch, peer_epoch=peer_epoch, payload=b"forged")
        b.receive_data(encode_frame(forged), pair.now)
    pair.drain()
    assert pair.messages("b") == [] and b.stats.dropped_stale == 3


# ---- dead peers ----------------------------------------------------------------------


def test_nothing_acknowledged_for_dead_after_kills_the_link():
    pair = open_pair(dead_after=4.0)
    pair.b_to_a = lambda frame: []
    pair.a.send_message(b"into the void")
    pair.settle()
    sent_at = pair.now
    pair.run(3.9, drain=False)
    assert pair.a.state is LinkState.OPEN
    pair.run(0.2, drain=False)
    assert pair.a.state is LinkState.DEAD
    assert pair.a.stats.timeouts >= 3
    with pytest.raises(LinkDead, match="nothing acknowledged for 4 s"):
        pair.a.next_event()
    with pytest.raises(LinkDead):
        pair.a.send_message(b"again")
    assert pair.a.next_deadline() is None and pair.a.data_to_send(sent_at + 10) == b""


def test_idle_link_without_keepalive_never_dies():
    pair = open_pair()
    pair.a_to_b = pair.b_to_a = lambda frame: []
    pair.run(60.0)
    assert pair.a.state is LinkState.OPEN and pair.a.next_deadline() is None


def test_keepalive_keeps_a_quiet_link_alive_and_finds_a_dead_one():
    pair = open_pair(keepalive=1.0, dead_after=3.0)
    pair.run(20.0)
    assert pair.a.state is pair.b.state is LinkState.OPEN
    probes = [f for f in map(parse, pair.sent["a"] + pair.sent["b"]) if f and f.flags & Flag.PROBE]
    assert 10 <= len(probes) <= 45
    pair.b_to_a = lambda frame: []
    # a last heard b at most one keepalive ago, so it dies 2 to 3 s from now.
    pair.run(1.9, drain=False)
    assert pair.a.state is LinkState.OPEN
    pair.run(1.2, drain=False)
    assert pair.a.state is LinkState.DEAD
    with pytest.raises(LinkDead, match="nothing heard"):
        pair.a.next_event()


def test_stale_sync_resynchronises_both_sides_instead_of_stalling():
    pair = open_pair()
    for i in range(5):
        pair.a.send_message(b"before %d" % i)
        pair.b.send_message(b"before %d" % i)
    pair.settle()
    # A SYNC of some earlier incarnation of b reaches a late: a believes b restarted.
    ghost = Frame(kind=FrameKind.SYNC, epoch=0xB0B0, payload=SYNC_PAYLOAD.pack(1024, 1 << 20))
    pair.a.receive_data(encode_frame(ghost), pair.now)
    pair.settle()
    pair.drain()
    assert PeerRestarted(old_epoch=0xBBBB0001, new_epoch=0xB0B0, lost_messages=0) in pair.events["a"]
    # b, whose session a dropped, hears a ask again and drops it too.
    assert PeerRestarted(old_epoch=0xAAAA0001, new_epoch=0xAAAA0001, lost_messages=0) in pair.events["b"]
    assert pair.a.peer_epoch == 0xBBBB0001 and pair.a.state is pair.b.state is LinkState.OPEN
    pair.a.send_message(b"after")
    pair.b.send_message(b"after")
    pair.run(1.0)
    assert pair.messages("a")[-1] == pair.messages("b")[-1] == b"after"


def test_repeated_sync_before_any_traffic_is_only_answered():
    pair = SimPair()
    dropped = []

    def drop_first_ack(frame):
        f = parse(frame)
        if f and f.kind is FrameKind.ACK and not dropped:
            dropped.append(f)
            return []
        return [frame]

    pair.a_to_b = drop_first_ack  # a's confirmation of b's SYNC is lost
    pair.run_until(lambda: pair.a.state is pair.b.state is LinkState.OPEN, seconds=5)
    pair.drain()
    assert dropped
    assert not any(isinstance(e, PeerRestarted) for e in pair.events["a"] + pair.events["b"])
