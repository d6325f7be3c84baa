"""A checkpoint: its manifest plus the contents of the pages it carries.

Every manifest lists the digest of every page of every RAM dataspace; an
incremental checkpoint carries only the contents written since its parent,
so restoring needs the whole chain. Page digests are SHA-256 over the
uncompressed page; the root digest covers the manifest and the set of page
digests the checkpoint carries, and nothing touches a board before both
check out.

File format (all integers little-endian), see docs/checkpoint-format.md:

    magic "GCRCKPT1" | u32 len | Manifest | u32 count | count x (u32 len | Page) | root digest (32)
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import Iterable

import zstandard
from google.protobuf.message import DecodeError

from .errors import BrokenChain, CheckpointCorrupt
from .v1 import checkpoint_pb2 as pb

__all__ = [
    "Checkpoint",
    "FORMAT_VERSION",
    "PAGE_SIZE",
    "ZERO_PAGE_DIGEST",
    "ZSTD_LEVEL",
    "decode_page",
    "encode_page",
    "page_digest",
    "order_chain",
    "verify_chain",
]

FORMAT_VERSION = 1
PAGE_SIZE = 4096
MAGIC = b"GCRCKPT1"
ZERO_PAGE_DIGEST = hashlib.sha256(bytes(PAGE_SIZE)).digest()
_ROOT_DOMAIN = b"genode-cr checkpoint v1\0"
ZSTD_LEVEL = 3


def page_digest(data: bytes | memoryview) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass
class Checkpoint:
    manifest: pb.Manifest
    pages: dict[bytes, bytes] = field(default_factory=dict)
    root_digest: bytes = b""

    def __post_init__(self) -> None:
        if not self.root_digest:
            self.root_digest = self.compute_root_digest()

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def parent_id(self) -> str:
        return self.manifest.parent_id

    @property
    def component(self) -> str:
        return self.manifest.component

    @property
    def is_full(self) -> bool:
        return not self.manifest.parent_id

    def compute_root_digest(self) -> bytes:
        h = hashlib.sha256(_ROOT_DOMAIN)
        manifest = self.manifest.SerializeToString(deterministic=True)
        h.update(struct.pack("<I", len(manifest)))
        h.update(manifest)
        for digest in sorted(self.pages):
            h.update(digest)
        return h.digest()

    def referenced_digests(self) -> set[bytes]:
        return {d for ds in self.manifest.dataspaces for d in ds.pages if d}

    def verify(self) -> None:
        """Raises CheckpointCorrupt unless manifest and pages are intact."""
        if self.manifest.format_version != FORMAT_VERSION:
            raise CheckpointCorrupt(
                f"checkpoint format {self.manifest.format_version} is not supported "
                f"(this build reads format {FORMAT_VERSION})")
        if self.compute_root_digest() != self.root_digest:
            raise CheckpointCorrupt(f"checkpoint {self.id or '?'}: root digest mismatch "
                                    "(manifest or page set was altered)")
        for digest, data in self.pages.items():
            if len(data) != PAGE_SIZE or page_digest(data) != digest:
                raise CheckpointCorrupt(f"checkpoint {self.id}: page {digest.hex()[:16]} "
                                        "does not match its digest")

    @property
    def data_size(self) -> int:
        return sum(len(p) for p in self.pages.values())

    # --- serialisation ----------------------------------------------------------

    def to_bytes(self) -> bytes:
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        manifest = self.manifest.SerializeToString(deterministic=True)
        out = [MAGIC, struct.pack("<I", len(manifest)), manifest,
               struct.pack("<I", len(self.pages))]
        for digest in sorted(self.pages):
            raw = encode_page(digest, self.pages[digest], compressor).SerializeToString()
            out += [struct.pack("<I", len(raw)), raw]
        out.append(self.root_digest)
        return b"".join(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        reader = _Reader(data)
        if reader.take(len(MAGIC)) != MAGIC:
            raise CheckpointCorrupt("not a genode-cr checkpoint (bad magic)")
        manifest = pb.Manifest()
        try:
            manifest.ParseFromString(reader.take(reader.u32()))
            pages: dict[bytes, bytes] = {}
            for _ in range(reader.u32()):
                page = pb.Page()
                page.ParseFromString(reader.take(reader.u32()))
                pages[page.digest] = decode_page(page)
        except DecodeError as error:
            raise CheckpointCorrupt(f"undecodable checkpoint: {error}") from error
        root = reader.take(32)
        if not reader.at_end():
            raise CheckpointCorrupt("trailing bytes after the checkpoint")
        checkpoint = cls(manifest, pages, root)
        checkpoint.verify()
        return checkpoint


def encode_page(digest: bytes, data: bytes, compressor: zstandard.ZstdCompressor) -> pb.Page:
    """A page as it travels and is stored: zstd-compressed, digest over the raw bytes."""
    return pb.Page(digest=digest, compression=pb.COMPRESSION_ZSTD,
                   data=compressor.compress(data))


def decode_page(page: pb.Page) -> bytes:
    if page.compression == pb.COMPRESSION_NONE:
        return page.data
    if page.compression != pb.COMPRESSION_ZSTD:
        raise CheckpointCorrupt(f"unknown page compression {page.compression}")
    try:
        return zstandard.ZstdDecompressor().decompress(page.data, max_output_size=PAGE_SIZE)
    except zstandard.ZstdError as error:
        raise CheckpointCorrupt(f"page {page.digest.hex()[:16]}: {error}") from error
    except MemoryError as error:    # a damaged frame header that claims a huge content size
        raise CheckpointCorrupt(f"page {page.digest.hex()[:16]}: frame header claims more "
                                f"than {PAGE_SIZE} bytes") from error


class _Reader:
    def __init__(self, data: bytes):
        self._data = memoryview(data)
        self._pos = 0

    def take(self, n: int) -> bytes:
        if self._pos + n > len(self._data):
            raise CheckpointCorrupt("checkpoint is truncated")
        chunk = self._data[self._pos:self._pos + n].tobytes()
        self._pos += n
        return chunk

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def at_end(self) -> bool:
        return self._pos == len(self._data)


def order_chain(checkpoints: Iterable[Checkpoint]) -> list[Checkpoint]:
    """Orders a full checkpoint and its incrementals by their parent links."""
    chain = list(checkpoints)
    if not chain:
        raise BrokenChain("no checkpoint given")
    by_parent = {c.parent_id: c for c in chain}
    if len(by_parent) != len(chain):
        raise BrokenChain("two checkpoints claim the same parent")
    head = by_parent.get("")
    if head is None:
        missing = sorted({c.parent_id for c in chain} - {c.id for c in chain})
        raise BrokenChain("chain has no full checkpoint"
                          + (f": parent {missing[0]} is missing" if missing else ""))
    ordered = [head]
    while ordered[-1].id in by_parent:
        ordered.append(by_parent[ordered[-1].id])
    if len(ordered) != len(chain):
        stray = [c.id for c in chain if c not in ordered]
        raise BrokenChain(f"checkpoints {', '.join(stray)} do not follow from {head.id}")
    return ordered


def verify_chain(checkpoints: Iterable[Checkpoint]) -> list[Checkpoint]:
    """What a board checks of a chain before restoring it, done offline: each
    checkpoint intact, one component, and every page a manifest refers to
    carried by some checkpoint up to it. Returns the chain in order."""
    chain = order_chain(checkpoints)
    carried: set[bytes] = set()
    for checkpoint in chain:
        checkpoint.verify()
        if checkpoint.component != chain[0].component:
            raise BrokenChain(f"checkpoint {checkpoint.id} is of {checkpoint.component}, "
                              f"the chain of {chain[0].component}")
        carried |= checkpoint.pages.keys()
        missing = checkpoint.referenced_digests() - carried
        if missing:
            raise BrokenChain(f"{len(missing)} page(s) referenced by {checkpoint.id} are in no "
                              "checkpoint of the chain")
    return chain
