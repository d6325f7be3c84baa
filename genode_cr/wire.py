"""Conversions between protobuf messages and domain objects, in one place.

Checkpoints cross the link as a stream (start, page chunks, end) so that no
message is larger than a chunk of pages. Two sides handle them differently:

- the boards: ``checkpoint_messages`` compresses a board's raw checkpoint
  page by page into the stream, and ``CheckpointAssembler`` decompresses and
  verifies every page of a staged one before it goes near memory;
- everyone in between: ``PackedAssembler`` collects a stream as compressed
  ``Page`` messages and ``packed_messages`` sends them on untouched, so the
  bytes the source board compressed are the bytes the target decompresses.
"""

from __future__ import annotations

from typing import Iterator

import zstandard

from .checkpoint import (DIGEST_SIZE, PAGE_SIZE, ZSTD_LEVEL, Checkpoint, PackedCheckpoint,
                         check_page, decode_page, encode_page)
from .errors import CheckpointCorrupt, ProtocolError
from .model import ComponentInfo, RestoreReport, Translation
from .v1 import board_pb2 as bpb
from .v1 import checkpoint_pb2 as pb

__all__ = [
    "CheckpointAssembler",
    "PAGES_PER_CHUNK",
    "PackedAssembler",
    "checkpoint_messages",
    "component_from_pb",
    "component_to_pb",
    "packed_messages",
    "report_from_pb",
    "report_to_pb",
]

#: Pages per PageChunk. One: a chunk is the unit that a move forwards from the
#: source's UART to the target's, and the final delta can only be on both
#: lines at once if it is cut small; a page takes 45 ms at 921600 baud, 16
#: took 0.7 s, which a live move's downtime paid twice (bench/migration.py).
PAGES_PER_CHUNK = 1


def component_to_pb(info: ComponentInfo) -> bpb.ComponentInfo:
    return bpb.ComponentInfo(name=info.name, rom=info.rom, state=info.state,
                             ram_quota=info.ram_quota, ram_used=info.ram_used,
                             cap_quota=info.cap_quota, cap_used=info.cap_used,
                             threads=info.threads)


def component_from_pb(message: bpb.ComponentInfo) -> ComponentInfo:
    return ComponentInfo(message.name, message.rom, message.state, message.ram_quota,
                         message.ram_used, message.cap_quota, message.cap_used, message.threads)


_REPORT_SCALARS = ("component", "checkpoint_id", "chain_length", "rounds", "caps_installed",
                   "cap_map_entries_translated", "cap_map_entries_unknown",
                   "parent_cap_rewritten", "dataspaces", "pages_written", "bytes_written",
                   "threads", "irqs_rebound", "rpc_gates", "timers_rearmed")


def report_to_pb(report: RestoreReport) -> bpb.RestoreReport:
    message = bpb.RestoreReport(**{f: getattr(report, f) for f in _REPORT_SCALARS})
    message.translations.extend(
        bpb.Translation(kind=t.kind, old_badge=t.old_badge, new_badge=t.new_badge, kcap=t.kcap)
        for t in report.translations)
    message.steps.extend(report.steps)
    message.skipped.extend(report.skipped)
    return message


def report_from_pb(message: bpb.RestoreReport) -> RestoreReport:
    report = RestoreReport(**{f: getattr(message, f) for f in _REPORT_SCALARS})
    report.translations = [Translation(t.kind, t.old_badge, t.new_badge, t.kcap)
                           for t in message.translations]
    report.steps, report.skipped = list(message.steps), list(message.skipped)
    return report


#: What a checkpoint stream is made of, in order: one start, chunks, one end.
StreamMessage = bpb.CheckpointStart | bpb.PageChunk | bpb.CheckpointEnd


def checkpoint_messages(checkpoint: Checkpoint, pages_per_chunk: int = PAGES_PER_CHUNK
                        ) -> Iterator[StreamMessage]:
    """A board's checkpoint as a stream; pages are compressed one by one, as each
    chunk is due, so the board runs on between chunks."""
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    digests = sorted(checkpoint.pages)
    yield bpb.CheckpointStart(manifest=checkpoint.manifest, page_count=len(digests),
                              page_bytes=len(digests) * PAGE_SIZE,
                              root_digest=checkpoint.root_digest)
    for start in range(0, len(digests), pages_per_chunk):
        yield bpb.PageChunk(pages=[encode_page(d, checkpoint.pages[d], compressor)
                                   for d in digests[start:start + pages_per_chunk]])
    yield bpb.CheckpointEnd(root_digest=checkpoint.root_digest)


def packed_messages(packed: PackedCheckpoint, pages_per_chunk: int = PAGES_PER_CHUNK
                    ) -> Iterator[StreamMessage]:
    """A packed checkpoint as a stream, its Page messages passed on as they are."""
    digests = sorted(packed.pages)
    yield bpb.CheckpointStart(manifest=packed.manifest, page_count=len(digests),
                              page_bytes=len(digests) * PAGE_SIZE,
                              root_digest=packed.root_digest)
    for start in range(0, len(digests), pages_per_chunk):
        yield bpb.PageChunk(pages=[packed.pages[d]
                                   for d in digests[start:start + pages_per_chunk]])
    yield bpb.CheckpointEnd(root_digest=packed.root_digest)


class _Assembler:
    """What every receiver checks of a stream before it holds a page: the page's
    shape (bounded size, a SHA-256 digest), no page twice, no more than announced.
    So a peer cannot make a receiver hold more than page_count bounded pages."""

    def __init__(self, start: bpb.CheckpointStart):
        self.manifest = start.manifest
        self.announced_root = start.root_digest
        self.expected_pages = start.page_count
        self.pages: dict = {}
        self.wire_bytes = 0

    def add(self, chunk: bpb.PageChunk) -> int:
        for page in chunk.pages:
            check_page(page)
            if page.digest in self.pages:
                raise ProtocolError(f"page {page.digest.hex()[:16]} sent twice")
            if len(self.pages) >= self.expected_pages:
                raise ProtocolError(f"more pages than the {self.expected_pages} announced")
            self.pages[page.digest] = self._keep(page)
            self.wire_bytes += len(page.data)
        return len(chunk.pages)

    def _keep(self, page: pb.Page):
        raise NotImplementedError

    def _root(self, end: bpb.CheckpointEnd) -> bytes:
        if len(self.pages) != self.expected_pages:
            raise CheckpointCorrupt(f"checkpoint stream ended after {len(self.pages)} of "
                                    f"{self.expected_pages} pages")
        if len(end.root_digest) != DIGEST_SIZE:
            raise CheckpointCorrupt(f"checkpoint {self.manifest.id or '?'}: a root digest of "
                                    f"{len(end.root_digest)} bytes")
        if self.announced_root and end.root_digest != self.announced_root:
            raise CheckpointCorrupt(f"checkpoint {self.manifest.id or '?'} ends with another "
                                    "root digest than its start announced")
        return end.root_digest


class PackedAssembler(_Assembler):
    """Collects a streamed checkpoint as it travels, compressed; ``finish`` checks
    the root digest (``verify_root``). The pages' contents are the target board's
    to check."""

    pages: dict[bytes, pb.Page]

    def _keep(self, page: pb.Page) -> pb.Page:
        return page

    def finish(self, end: bpb.CheckpointEnd) -> PackedCheckpoint:
        packed = PackedCheckpoint(self.manifest, self.pages, self._root(end))
        packed.verify_root()
        return packed


class CheckpointAssembler(_Assembler):
    """The target board's side: decompresses each page as it arrives; ``finish``
    verifies every page against its digest and the root digest."""

    pages: dict[bytes, bytes]

    def _keep(self, page: pb.Page) -> bytes:
        return decode_page(page)

    def finish(self, end: bpb.CheckpointEnd) -> Checkpoint:
        checkpoint = Checkpoint(self.manifest, self.pages, self._root(end))
        checkpoint.verify()
        return checkpoint
