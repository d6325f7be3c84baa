"""Cutting the received byte stream into COBS blocks, in bounded memory.

The only state is the unfinished block.  A line that delivers garbage without
ever sending 0x00 would otherwise grow it forever, so a block that outgrows the
largest legal frame is thrown away and everything up to the next 0x00 with it.
"""

from __future__ import annotations

__all__ = ["Deframer"]


class Deframer:
    def __init__(self, max_block: int) -> None:
        self.max_block = max_block
        self._buf = bytearray()
        self._skipping = False
        #: Blocks discarded for being longer than max_block.
        self.oversize_blocks = 0
        #: Bytes discarded with them.
        self.discarded_bytes = 0

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Take received bytes; return the blocks they completed (empty ones skipped)."""
        blocks: list[bytes] = []
        pieces = data.split(b"\x00")
        last = len(pieces) - 1
        for i, piece in enumerate(pieces):
            ended = i < last  # this piece was followed by a delimiter
            if self._skipping:
                self.discarded_bytes += len(piece)
                self._skipping = not ended
                continue
            if len(self._buf) + len(piece) > self.max_block:
                self.oversize_blocks += 1
                self.discarded_bytes += len(self._buf) + len(piece)
                self._buf.clear()
                self._skipping = not ended
                continue
            self._buf += piece
            if ended:
                # Back-to-back delimiters are legal padding, not empty frames.
                if self._buf:
                    blocks.append(bytes(self._buf))
                    self._buf.clear()
        return blocks

    def reset(self) -> None:
        self._buf.clear()
        self._skipping = False
