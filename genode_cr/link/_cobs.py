"""Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999).

COBS rewrites a block so that it contains no 0x00 byte, which leaves 0x00 free
to end every frame: a receiver that lost track of the stream resynchronises at
the next 0x00 without any escape-state to recover.  The cost is one byte per
started 254 bytes, independent of the content.

The encoding is the canonical one (no trailing empty group after a final
254-byte run), so that the board's encoder and ours produce identical bytes.
"""

from __future__ import annotations

__all__ = ["cobs_encode", "cobs_decode", "cobs_max_encoded_len", "CobsDecodeError"]

_RUN = 254  # longest run of non-zero bytes a single code byte can describe


class CobsDecodeError(ValueError):
    """The block is not valid COBS (a zero byte, or a group longer than the block)."""


def cobs_max_encoded_len(n: int) -> int:
    """Upper bound on the encoded size of ``n`` bytes (delimiter not included)."""
    return n + n // _RUN + 1


def cobs_encode(data: bytes) -> bytes:
    out = bytearray()
    # Splitting on zeros gives the runs directly; each run but the last was
    # followed by a zero, which the group's code byte stands for.
    runs = bytes(data).split(b"\x00")
    last = len(runs) - 1
    for i, run in enumerate(runs):
        start = 0
        while len(run) - start >= _RUN:
            out.append(_RUN + 1)
            out += run[start : start + _RUN]
            start += _RUN
        if i == last and start and start == len(run):
            # A final full run needs no empty group after it: nothing follows.
            break
        out.append(len(run) - start + 1)
        out += run[start:]
    return bytes(out)


def cobs_decode(block: bytes) -> bytes:
    """Decode one block (without its 0x00 delimiter)."""
    if b"\x00" in block:
        raise CobsDecodeError("zero byte inside a COBS block")
    out = bytearray()
    i, n = 0, len(block)
    while i < n:
        code = block[i]
        end = i + code
        if end > n:
            raise CobsDecodeError(f"group at {i} runs {end - n} bytes past the block")
        out += block[i + 1 : end]
        i = end
        # A short group implies a zero after it, except at the very end where
        # the implied zero is the one that was never part of the data.
        if code <= _RUN and i < n:
            out.append(0)
    return bytes(out)
