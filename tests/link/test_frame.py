import struct
from pathlib import Path

import crc32c
import pytest

from genode_cr.link import FRAME_VERSION, Flag, Frame, FrameError, FrameKind, decode_frame, encode_frame
from genode_cr.link._cobs import cobs_decode, cobs_encode
from genode_cr.link._frame import CRC_SIZE, HEADER_SIZE, max_wire_size

DOC = Path(__file__).resolve().parents[2] / "docs" / "link-protocol.md"

# The worked example of docs/link-protocol.md: the last fragment of a message,
# carrying b"hi\x00", from epoch 0x1234abcd to 0x0badf00d, seq 7, ack 3.
EXAMPLE = Frame(
    kind=FrameKind.DATA,
    flags=Flag.END,
    epoch=0x1234ABCD,
    peer_epoch=0x0BADF00D,
    seq=7,
    ack=3,
    payload=b"hi\x00",
)
EXAMPLE_WIRE = bytes.fromhex(
    "04 01 02 01 0a cd ab 34 12 0d f0 ad 0b 07 01 01 02 03 01 01 02 03 03 68 69 05 19 a2 fc 01 00"
)


def test_crc32c_is_castagnoli_with_its_check_value():
    assert crc32c.crc32c(b"123456789") == 0xE3069283


def test_header_layout_is_little_endian_at_documented_offsets():
    raw = cobs_decode(encode_frame(EXAMPLE)[:-1])
    assert len(raw) == HEADER_SIZE + 3 + CRC_SIZE == 29
    assert raw[0] == FRAME_VERSION == 1
    assert raw[1] == FrameKind.DATA == 2
    assert raw[2] == Flag.END == 1
    assert raw[3] == 0
    assert struct.unpack_from("<IIII", raw, 4) == (0x1234ABCD, 0x0BADF00D, 7, 3)
    assert struct.unpack_from("<H", raw, 20) == (3,)
    assert raw[22:25] == b"hi\x00"
    assert struct.unpack_from("<I", raw, 25) == (crc32c.crc32c(raw[:25]),)


def test_worked_example_matches_the_documentation():
    assert encode_frame(EXAMPLE) == EXAMPLE_WIRE
    assert decode_frame(EXAMPLE_WIRE[:-1]) == EXAMPLE
    doc = DOC.read_text()
    assert " ".join(f"{b:02x}" for b in EXAMPLE_WIRE) in " ".join(doc.split())


@pytest.mark.parametrize("kind", list(FrameKind))
@pytest.mark.parametrize("flags", [Flag.NONE, Flag.END, Flag.NAK | Flag.PROBE, Flag.END | Flag.NAK])
def test_round_trip(kind, flags):
    frame = Frame(kind=kind, flags=flags, epoch=0xFFFFFFFF, peer_epoch=1, seq=2**32 - 1, ack=0, payload=bytes(300))
    wire = encode_frame(frame)
    assert wire.endswith(b"\x00") and b"\x00" not in wire[:-1]
    assert len(wire) <= max_wire_size(300)
    assert decode_frame(wire[:-1]) == frame


def test_unknown_flag_bits_are_ignored():
    raw = bytearray(cobs_decode(encode_frame(EXAMPLE)[:-1]))
    raw[2] |= 0xF0
    raw[-4:] = struct.pack("<I", crc32c.crc32c(bytes(raw[:-4])))
    assert decode_frame(cobs_encode(bytes(raw))).flags == Flag.END


def test_every_single_and_double_bit_flip_is_caught():
    wire = encode_frame(EXAMPLE)[:-1]
    raw = cobs_decode(wire)
    for bit in range(len(raw) * 8):
        damaged = bytearray(raw)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(FrameError):
            decode_frame(cobs_encode(bytes(damaged)))
    for bit in range(0, len(raw) * 8, 5):
        damaged = bytearray(raw)
        damaged[bit // 8] ^= 1 << (bit % 8)
        other = (bit * 7 + 3) % (len(raw) * 8)
        if other != bit:
            damaged[other // 8] ^= 1 << (other % 8)
            with pytest.raises(FrameError):
                decode_frame(cobs_encode(bytes(damaged)))


def _with_crc(body: bytes) -> bytes:
    return cobs_encode(body + struct.pack("<I", crc32c.crc32c(body)))


def _body(version=1, kind=2, length=None, payload=b"abc"):
    length = len(payload) if length is None else length
    return struct.pack("<BBBBIIIIH", version, kind, 0, 0, 1, 2, 3, 4, length) + payload


@pytest.mark.parametrize(
    "block,reason",
    [
        (b"\x05\x01", "cobs"),
        (cobs_encode(b"\x01" * 25), "short"),
        (cobs_encode(_body() + b"\x00\x00\x00\x00"), "crc"),
        (_with_crc(_body(version=2)), "version"),
        (_with_crc(_body(kind=9)), "kind"),
        (_with_crc(_body(length=4)), "length"),
        (_with_crc(_body(payload=bytes(100))), "oversize"),
    ],
)
def test_rejections_name_their_reason(block, reason):
    with pytest.raises(FrameError) as info:
        decode_frame(block, max_payload=64)
    assert info.value.reason == reason
