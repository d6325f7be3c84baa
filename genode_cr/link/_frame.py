"""One frame: header, payload and CRC-32C, and its COBS form on the wire.

Layout before stuffing (all integers little-endian, see docs/link-protocol.md):

    off size field
      0    1 version      FRAME_VERSION; other versions are dropped, not guessed at
      1    1 kind         FrameKind
      2    1 flags        Flag bits; unknown bits are sent as 0 and ignored
      3    1 reserved     sent as 0, ignored
      4    4 epoch        sender's link epoch
      8    4 peer_epoch   the receiver's epoch as the sender knows it, 0 = unknown
     12    4 seq          DATA: this frame's number; other kinds: next DATA number
     16    4 ack          next DATA number the sender expects from the receiver
     20    2 length       payload length
     22    n payload
   22+n    4 crc          CRC-32C over bytes 0 .. 22+n
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

import crc32c

from ._cobs import CobsDecodeError, cobs_decode, cobs_encode, cobs_max_encoded_len

__all__ = [
    "FRAME_VERSION",
    "HEADER_SIZE",
    "CRC_SIZE",
    "MAX_PAYLOAD_LIMIT",
    "MIN_PAYLOAD_LIMIT",
    "FrameKind",
    "Flag",
    "Frame",
    "FrameError",
    "encode_frame",
    "decode_frame",
    "max_wire_size",
]

FRAME_VERSION = 1
_HEADER = struct.Struct("<BBBBIIIIH")
_CRC = struct.Struct("<I")
HEADER_SIZE = _HEADER.size  # 22
CRC_SIZE = _CRC.size  # 4
# The length field is 16 bits; the floor keeps a SYNC payload inside any peer's limit.
MAX_PAYLOAD_LIMIT = 0xFFFF
MIN_PAYLOAD_LIMIT = 32


class FrameKind(enum.IntEnum):
    SYNC = 1  # handshake: "this is my epoch, and yours as I know it"
    DATA = 2  # one fragment of a message; consumes a sequence number
    ACK = 3  # acknowledgement only; also the keepalive probe and its answer
    RESET = 4  # the sender ends its session; the receiver forgets it


class Flag(enum.IntFlag):
    NONE = 0
    END = 0x01  # DATA: last fragment of a message
    NAK = 0x02  # ack names a missing frame: resend from there now, not at the timeout
    PROBE = 0x04  # ACK: keepalive, the receiver must answer


_KINDS = frozenset(int(k) for k in FrameKind)


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    kind: FrameKind
    flags: Flag = Flag.NONE
    epoch: int
    peer_epoch: int = 0
    seq: int = 0
    ack: int = 0
    payload: bytes = b""


class FrameError(ValueError):
    """A block from the wire that is not a frame we accept.

    ``reason`` names the check that failed ("cobs", "short", "crc", "version",
    "kind", "length", "oversize"); the link counts drops by it.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def max_wire_size(max_payload: int) -> int:
    """Bytes a frame with ``max_payload`` bytes of payload can take on the wire, delimiter included."""
    return cobs_max_encoded_len(HEADER_SIZE + max_payload + CRC_SIZE) + 1


def encode_frame(frame: Frame) -> bytes:
    """The frame as it goes on the wire: COBS block plus the 0x00 delimiter."""
    if len(frame.payload) > MAX_PAYLOAD_LIMIT:
        raise ValueError(f"payload of {len(frame.payload)} bytes does not fit the length field")
    body = _HEADER.pack(
        FRAME_VERSION,
        frame.kind,
        frame.flags,
        0,
        frame.epoch,
        frame.peer_epoch,
        frame.seq,
        frame.ack,
        len(frame.payload),
    ) + frame.payload
    return cobs_encode(body + _CRC.pack(crc32c.crc32c(body))) + b"\x00"


def decode_frame(block: bytes, max_payload: int = MAX_PAYLOAD_LIMIT) -> Frame:
    """Parse one COBS block (delimiter already removed); raise FrameError if it is not a frame."""
    try:
        raw = cobs_decode(block)
    except CobsDecodeError as exc:
        raise FrameError("cobs", str(exc)) from None
    if len(raw) < HEADER_SIZE + CRC_SIZE:
        raise FrameError("short", f"{len(raw)} bytes")
    body, (crc,) = raw[:-CRC_SIZE], _CRC.unpack_from(raw, len(raw) - CRC_SIZE)
    if crc32c.crc32c(body) != crc:
        raise FrameError("crc", f"CRC-32C mismatch over {len(body)} bytes")
    version, kind, flags, _reserved, epoch, peer_epoch, seq, ack, length = _HEADER.unpack_from(body)
    if version != FRAME_VERSION:
        raise FrameError("version", f"frame version {version}, we speak {FRAME_VERSION}")
    if kind not in _KINDS:
        raise FrameError("kind", f"unknown frame kind {kind}")
    if length != len(body) - HEADER_SIZE:
        raise FrameError("length", f"length field {length}, payload {len(body) - HEADER_SIZE}")
    if length > max_payload:
        raise FrameError("oversize", f"payload {length} over the limit of {max_payload}")
    return Frame(
        kind=FrameKind(kind),
        flags=Flag(flags & (Flag.END | Flag.NAK | Flag.PROBE)),
        epoch=epoch,
        peer_epoch=peer_epoch,
        seq=seq,
        ack=ack,
        payload=body[HEADER_SIZE:],
    )
