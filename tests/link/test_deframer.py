import random

from genode_cr.link._deframer import Deframer


def test_blocks_come_out_whatever_the_chunking():
    stream = b"\x00abc\x00\x00de\x00f"
    for size in range(1, len(stream) + 1):
        deframer = Deframer(max_block=16)
        blocks = []
        for i in range(0, len(stream), size):
            blocks += deframer.feed(stream[i : i + size])
        assert blocks == [b"abc", b"de"]
        assert deframer.buffered == 1


def test_overlong_block_is_discarded_up_to_the_next_delimiter():
    deframer = Deframer(max_block=8)
    assert deframer.feed(b"123456789") == []
    assert deframer.buffered == 0
    assert deframer.feed(b"abc") == []  # still inside the overlong block
    assert deframer.feed(b"def\x00ok\x00") == [b"ok"]
    assert deframer.oversize_blocks == 1
    assert deframer.discarded_bytes == 15


def test_exactly_max_block_is_kept():
    deframer = Deframer(max_block=8)
    assert deframer.feed(b"12345678\x00") == [b"12345678"]
    assert deframer.feed(b"123456789\x00") == []


def test_memory_stays_bounded_on_random_input():
    rng = random.Random(3)
    deframer = Deframer(max_block=100)
    for _ in range(2000):
        chunk = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 300)))
        if rng.random() < 0.1:
            chunk += b"\x00"
        for block in deframer.feed(chunk):
            assert 0 < len(block) <= 100 and b"\x00" not in block
        assert deframer.buffered <= 100
