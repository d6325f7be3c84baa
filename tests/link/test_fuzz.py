"""Random and mutated frames into both sides of the core.

What must hold whatever arrives: receive_data() never raises; next_event()
raises nothing but LinkError subclasses; memory stays within the documented
bound; and over a damaged line no message is delivered other than exactly the
ones sent, in order.
"""

import os
import random
import struct

import crc32c

from genode_cr.link import MIN_MESSAGE_LIMIT, NEED_DATA, Link, LinkError, LinkState
from genode_cr.link._cobs import cobs_encode
from genode_cr.link._frame import max_wire_size
from genode_cr.link._link import SYNC_PAYLOAD

from ._pair import SimPair

SEED = 0x5EED
OPTIONS = dict(max_payload=256, max_message=MIN_MESSAGE_LIMIT, max_pending=8192, window=8, rto=0.05, dead_after=2.0, keepalive=0.5)
# Partial block + partial message + undelivered messages, per Link.receive_buffered.
BOUND = max_wire_size(256) + MIN_MESSAGE_LIMIT + 8192


def mutate(rng: random.Random, frame: bytes, corpus: list[bytes]) -> bytes:
    data = bytearray(frame)
    how = rng.randrange(7)
    if how == 0:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif how == 1:
        del data[rng.randrange(len(data)) :]
    elif how == 2:
        data[rng.randrange(len(data)) : rng.randrange(len(data))] = rng.randbytes(rng.randint(1, 40))
    elif how == 3:
        other = rng.choice(corpus)
        data = data[: rng.randrange(len(data))] + other[rng.randrange(len(other)) :]
    elif how == 4:
        del data[rng.randrange(len(data))]
    elif how == 5:
        data[rng.randrange(len(data))] = 0
    else:
        data = bytearray(rng.randbytes(rng.randint(1, 2 * len(data))))
    return bytes(data)


def forged(rng: random.Random, link: Link) -> bytes:
    """A frame with a correct CRC and arbitrary, often plausible, header fields."""
    epochs = [link.our_epoch, link.peer_epoch, 0, rng.getrandbits(32)]
    # A SYNC with a strange epoch is a restart by the rules, so it stays rare
    # enough for the links to spend most of the run open.
    kind = 1 if rng.random() < 0.02 else rng.choice([2, 2, 2, 3, 3, 4, rng.randrange(256)])
    payload_len = rng.choice([0, 1, 6, 255, 256, 257, rng.randrange(300)])
    # A limit under the protocol's floor is rightly fatal; keep it rare so the links live on.
    limit = 8 if rng.random() < 0.01 else rng.choice([32, 256, 1024, 65535])
    payload = SYNC_PAYLOAD.pack(limit, rng.getrandbits(32)) if kind == 1 else b""
    payload = (payload + rng.randbytes(payload_len))[:payload_len] if kind != 1 else payload
    near = rng.choice([0, 1, 2, 3, 2**31, 2**32 - 1, rng.getrandbits(32)])
    body = struct.pack(
        "<BBBBIIIIH",
        rng.choice([1, 1, 1, 1, 0, 2]),
        kind,
        rng.getrandbits(8),
        rng.getrandbits(8),
        rng.choice(epochs),
        rng.choice(epochs),
        near,
        rng.choice([0, 1, near, rng.getrandbits(32)]),
        len(payload) if rng.random() < 0.9 else rng.getrandbits(16),
    ) + payload
    return cobs_encode(body + struct.pack("<I", crc32c.crc32c(body))) + b"\x00"


def established(rng: random.Random) -> SimPair:
    pair = SimPair(
        a=Link(epoch=rng.getrandbits(31) + 1, **OPTIONS),
        b=Link(epoch=rng.getrandbits(31) + 1, **OPTIONS),
    )
    pair.settle()
    return pair


def drain_checked(link: Link) -> int:
    """Take every event; return how many; LinkError is the only exception allowed out."""
    n = 0
    try:
        while link.next_event() is not NEED_DATA:
            n += 1
    except LinkError:
        assert link.state in (LinkState.ERROR, LinkState.DEAD)
    return n


def test_100k_random_and_mutated_frames_into_both_sides():
    rng = random.Random(SEED)
    pair = established(rng)
    for _ in range(20):
        pair.a.send_message(os.urandom(rng.randrange(2000)))
        pair.b.send_message(os.urandom(rng.randrange(2000)))
    pair.run(1.0)
    corpus = pair.sent["a"] + pair.sent["b"]
    assert len(corpus) > 50

    fed = failures = checks = both_open = 0
    while fed < 100_000:
        for link in (pair.a, pair.b):
            roll = rng.random()
            if roll < 0.45:
                block = mutate(rng, rng.choice(corpus), corpus)
            elif roll < 0.85:
                block = forged(rng, link)
            elif roll < 0.95:
                block = rng.choice(corpus)  # replayed, valid frame of some session
            else:
                block = rng.randbytes(rng.randrange(1, 3000))
            link.receive_data(block, pair.now)
            fed += 1
            assert link.receive_buffered <= BOUND
            drain_checked(link)
        if fed % 200 == 0:
            # Let time pass and the two talk, so timers, acks and resends run too.
            pair.tick(0.02)
            for _ in range(3):
                pair.exchange()
            for link in (pair.a, pair.b):
                drain_checked(link)
                if link.state is LinkState.OPEN and link.send_buffered < 4096:
                    link.send_message(os.urandom(rng.randrange(600)))
            checks += 1
            both_open += pair.a.state is pair.b.state is LinkState.OPEN
            if {pair.a.state, pair.b.state} & {LinkState.ERROR, LinkState.DEAD}:
                failures += 1
                pair = established(rng)
    # Forged frames may rightly end a link (a message over the limit, acks for
    # frames never sent); the fuzz must still have spent most of its time on
    # open links, or it tested the handshake only.
    assert failures < checks / 10
    assert both_open > checks / 3


def test_damaged_line_delivers_exactly_what_was_sent():
    rng = random.Random(SEED + 1)
    pair = SimPair(a=Link(epoch=11, **OPTIONS), b=Link(epoch=22, **OPTIONS))
    passed = [0]

    def damaging_line(frame: bytes) -> list[bytes]:
        passed[0] += 1
        roll = rng.random()
        if roll < 0.04:
            return []
        if roll < 0.08:
            return [frame, frame]
        if roll < 0.20:
            return [mutate(rng, frame, pair.sent["a"][-50:] + pair.sent["b"][-50:] or [frame])]
        if roll < 0.22:
            return [rng.randbytes(rng.randrange(1, 500))]
        return [frame]

    pair.a_to_b = pair.b_to_a = damaging_line
    sent_ab = [os.urandom(rng.choice([0, 1, 100, 255, 256, 257, 1000, 4096])) for _ in range(400)]
    sent_ba = [os.urandom(rng.choice([0, 5, 300, 2000])) for _ in range(200)]
    for m in sent_ab:
        pair.a.send_message(m)
    for m in sent_ba:
        pair.b.send_message(m)
    pair.run_until(lambda: len(pair.messages("b")) == len(sent_ab) and len(pair.messages("a")) == len(sent_ba), seconds=600)
    assert pair.messages("b") == sent_ab
    assert pair.messages("a") == sent_ba
    assert pair.a.state is pair.b.state is LinkState.OPEN
    assert pair.a.stats.frames_retransmitted > 0 and pair.b.stats.dropped_crc > 0
    assert passed[0] > 3000
