"""Conversions between protobuf messages and domain objects, in one place.

Checkpoints cross the link as a stream (start, page chunks, end) so that no
message is larger than a chunk of pages; ``checkpoint_messages`` cuts one
into that shape and ``CheckpointAssembler`` puts it back together and
verifies it.
"""

from __future__ import annotations

from typing import Iterator

import zstandard

from .checkpoint import PAGE_SIZE, ZSTD_LEVEL, Checkpoint, decode_page, encode_page
from .emu.cr import ComponentInfo
from .emu.restore import RestoreReport, Translation
from .errors import CheckpointCorrupt, ProtocolError
from .v1 import board_pb2 as bpb

__all__ = [
    "CheckpointAssembler",
    "PAGES_PER_CHUNK",
    "checkpoint_messages",
    "component_from_pb",
    "component_to_pb",
    "report_from_pb",
    "report_to_pb",
]

#: Pages per PageChunk: 16 compressed pages stay well below 64 KiB.
PAGES_PER_CHUNK = 16


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


def checkpoint_messages(checkpoint: Checkpoint) -> Iterator[bpb.CheckpointStart | bpb.PageChunk
                                                               | bpb.CheckpointEnd]:
    """The checkpoint as a stream; pages are compressed one by one here."""
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    digests = sorted(checkpoint.pages)
    yield bpb.CheckpointStart(manifest=checkpoint.manifest, page_count=len(digests),
                              page_bytes=len(digests) * PAGE_SIZE)
    for start in range(0, len(digests), PAGES_PER_CHUNK):
        yield bpb.PageChunk(pages=[encode_page(d, checkpoint.pages[d], compressor)
                                   for d in digests[start:start + PAGES_PER_CHUNK]])
    yield bpb.CheckpointEnd(root_digest=checkpoint.root_digest)


class CheckpointAssembler:
    """Collects a streamed checkpoint; ``finish`` verifies it."""

    def __init__(self, start: bpb.CheckpointStart):
        self.manifest = start.manifest
        self.expected_pages = start.page_count
        self.pages: dict[bytes, bytes] = {}
        self.wire_bytes = 0

    def add(self, chunk: bpb.PageChunk) -> int:
        for page in chunk.pages:
            self.wire_bytes += len(page.data)
            self.pages[page.digest] = decode_page(page)
        if len(self.pages) > self.expected_pages:
            raise ProtocolError(f"more pages than the {self.expected_pages} announced")
        return len(chunk.pages)

    def finish(self, end: bpb.CheckpointEnd) -> Checkpoint:
        if len(self.pages) != self.expected_pages:
            raise CheckpointCorrupt(f"checkpoint stream ended after {len(self.pages)} of "
                                    f"{self.expected_pages} pages")
        checkpoint = Checkpoint(self.manifest, self.pages, end.root_digest)
        checkpoint.verify()
        return checkpoint
