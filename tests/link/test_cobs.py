import random

import pytest

from genode_cr.link._cobs import CobsDecodeError, cobs_decode, cobs_encode, cobs_max_encoded_len

RUN = bytes(range(1, 255))  # 254 non-zero bytes

VECTORS = [
    (b"", b"\x01"),
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (RUN, b"\xff" + RUN),
    (b"\x00" + RUN, b"\x01\xff" + RUN),
    (RUN + b"\xff", b"\xff" + RUN + b"\x02\xff"),
    (RUN[1:] + b"\xff\x00", b"\xff" + RUN[1:] + b"\xff\x01\x01"),
    (RUN[2:] + b"\xff\x00\x01", b"\xfe" + RUN[2:] + b"\xff\x02\x01"),
]


@pytest.mark.parametrize("plain,encoded", VECTORS)
def test_known_vectors(plain, encoded):
    assert cobs_encode(plain) == encoded
    assert cobs_decode(encoded) == plain


def test_non_canonical_trailing_group_still_decodes():
    # A board encoder may append an empty group after a final 254-byte run.
    assert cobs_decode(b"\xff" + RUN + b"\x01") == RUN


@pytest.mark.parametrize("n", [1, 2, 253, 254, 255, 508, 509, 1050, 4096])
def test_round_trip_without_zeros_within_bound(n):
    rng = random.Random(n)
    for zero_share in (0.0, 0.01, 0.5, 1.0):
        data = bytes(0 if rng.random() < zero_share else rng.randrange(1, 256) for _ in range(n))
        encoded = cobs_encode(data)
        assert b"\x00" not in encoded
        assert len(encoded) <= cobs_max_encoded_len(n)
        assert cobs_decode(encoded) == data


@pytest.mark.parametrize("bad", [b"\x03\x11", b"\x05\x11\x22\x33", b"\x02\x11\x00\x01", b"\xff" + RUN[:-1]])
def test_malformed_blocks_are_rejected(bad):
    with pytest.raises(CobsDecodeError):
        cobs_decode(bad)
