"""A checkpoint: its manifest plus the contents of the pages it carries.

A full checkpoint's manifest lists the digest of every page of every RAM
dataspace. An incremental one carries only the contents written since its
parent, and may list a dataspace's pages as the entries that differ from its
parent's list (a delta list), so that its manifest grows with what changed,
not with the component; ``resolve_page_lists`` turns a chain's lists back into
whole ones. Either way restoring needs the whole chain. Page digests are
SHA-256 over the uncompressed page; the root digest covers the manifest and
the set of page digests the checkpoint carries, and nothing touches a board
before both check out.

A checkpoint exists in two shapes. ``PackedCheckpoint`` holds the pages as
they travel and are stored, zstd-compressed ``Page`` messages: agents, files
and the coordinator pass those bytes on as they are, and only the target
board decompresses them. ``Checkpoint`` holds the raw pages, for the board
that takes or restores it.

File format (all integers little-endian), see docs/checkpoint-format.md:

    magic "GCRCKPT1" | u32 len | Manifest | u32 count | count x (u32 len | Page) | root digest (32)
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

import zstandard
from google.protobuf.message import DecodeError

from .errors import BrokenChain, CheckpointCorrupt
from .v1 import checkpoint_pb2 as pb

__all__ = [
    "Checkpoint",
    "DIGEST_SIZE",
    "FORMAT_VERSION",
    "MAX_PAGE_DATA",
    "PAGE_SIZE",
    "PackedCheckpoint",
    "PageLists",
    "ZERO_PAGE_DIGEST",
    "ZSTD_LEVEL",
    "check_page",
    "check_page_lists",
    "decode_page",
    "encode_page",
    "named_digests",
    "page_counts",
    "page_digest",
    "referenced_in",
    "resolve_page_lists",
    "resolve_pages",
    "root_digest",
    "order_chain",
    "verify_chain",
]

FORMAT_VERSION = 1
PAGE_SIZE = 4096
MAGIC = b"GCRCKPT1"
ZERO_PAGE_DIGEST = hashlib.sha256(bytes(PAGE_SIZE)).digest()
DIGEST_SIZE = 32
_ROOT_DOMAIN = b"genode-cr checkpoint v1\0"
ZSTD_LEVEL = 3
#: The most a page's data may take: ZSTD_COMPRESSBOUND(4096), what one zstd frame of
#: incompressible content needs at worst (4174 bytes). Anything longer is not a page,
#: whoever sent it, so an assembler never holds more than this per announced page.
MAX_PAGE_DATA = PAGE_SIZE + (PAGE_SIZE >> 8) + (((128 << 10) - PAGE_SIZE) >> 11)


def page_digest(data: bytes | memoryview) -> bytes:
    return hashlib.sha256(data).digest()


def _root_digest(manifest: pb.Manifest, digests: Iterable[bytes]) -> bytes:
    h = hashlib.sha256(_ROOT_DOMAIN)
    serialized = manifest.SerializeToString(deterministic=True)
    h.update(struct.pack("<I", len(serialized)))
    h.update(serialized)
    for digest in sorted(digests):
        h.update(digest)
    return h.digest()


def root_digest(manifest: pb.Manifest, digests: Iterable[bytes]) -> bytes:
    """The root digest of a manifest and the set of page digests a checkpoint carries,
    for those that hold the pages elsewhere (a page store)."""
    return _root_digest(manifest, digests)


def _check_root(manifest: pb.Manifest, digests: Iterable[bytes], root_digest: bytes) -> None:
    if manifest.format_version != FORMAT_VERSION:
        raise CheckpointCorrupt(
            f"checkpoint format {manifest.format_version} is not supported "
            f"(this build reads format {FORMAT_VERSION})")
    if _root_digest(manifest, digests) != root_digest:
        raise CheckpointCorrupt(f"checkpoint {manifest.id or '?'}: root digest mismatch "
                                "(manifest or page set was altered)")
    check_page_lists(manifest)


def _page_mismatch(checkpoint_id: str, digest: bytes) -> CheckpointCorrupt:
    return CheckpointCorrupt(f"checkpoint {checkpoint_id}: page {digest.hex()[:16]} "
                             "does not match its digest")


class _ManifestView:
    """What both shapes of a checkpoint tell from their manifest alone."""

    manifest: pb.Manifest

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


@dataclass
class Checkpoint(_ManifestView):
    """A checkpoint with raw pages: ``pages`` maps each digest to its 4096 bytes."""

    manifest: pb.Manifest
    pages: dict[bytes, bytes] = field(default_factory=dict)
    root_digest: bytes = b""

    def __post_init__(self) -> None:
        if not self.root_digest:
            self.root_digest = self.compute_root_digest()

    def compute_root_digest(self) -> bytes:
        return _root_digest(self.manifest, self.pages)

    def referenced_digests(self) -> set[bytes]:
        """The page digests this manifest names (see ``named_digests``)."""
        return named_digests(self.manifest)

    def verify(self) -> None:
        """Raises CheckpointCorrupt unless manifest and pages are intact."""
        _check_root(self.manifest, self.pages, self.root_digest)
        for digest, data in self.pages.items():
            if len(data) != PAGE_SIZE or page_digest(data) != digest:
                raise _page_mismatch(self.id, digest)

    @property
    def data_size(self) -> int:
        return sum(len(p) for p in self.pages.values())

    # --- serialisation: the file holds the packed shape ------------------------------

    def to_bytes(self) -> bytes:
        return PackedCheckpoint.pack(self).to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Checkpoint:
        """Reads a file and verifies all of it (``unpack`` checks every page)."""
        return PackedCheckpoint.from_bytes(data).unpack()


@dataclass
class PackedCheckpoint(_ManifestView):
    """A checkpoint as it travels: ``pages`` maps each digest to its ``Page`` message,
    compressed as the source board sent it. Nothing here recompresses a page."""

    manifest: pb.Manifest
    pages: dict[bytes, pb.Page] = field(default_factory=dict)
    root_digest: bytes = b""

    @property
    def wire_bytes(self) -> int:
        """What the pages take as they travel and are stored (compressed)."""
        return sum(len(p.data) for p in self.pages.values())

    @property
    def page_bytes(self) -> int:
        """What the pages take once decompressed."""
        return len(self.pages) * PAGE_SIZE

    def compute_root_digest(self) -> bytes:
        return _root_digest(self.manifest, self.pages)

    def referenced_digests(self) -> set[bytes]:
        """The page digests this manifest names (see ``named_digests``)."""
        return named_digests(self.manifest)

    def verify_root(self) -> None:
        """Checks format, root digest and each page's shape, without decompressing:
        what can be known of a checkpoint that is only passed on."""
        for digest, page in self.pages.items():
            check_page(page)
            if page.digest != digest:
                raise _page_mismatch(self.id, digest)
        _check_root(self.manifest, self.pages, self.root_digest)

    def verify(self) -> None:
        """``verify_root`` and every page's content; decompresses to check, keeps the bytes."""
        self.verify_root()
        for page in self.pages.values():
            self._content(page)

    def unpack(self) -> Checkpoint:
        """The raw checkpoint, verified (each page is decompressed once)."""
        self.verify_root()
        pages = {digest: self._content(page) for digest, page in self.pages.items()}
        return Checkpoint(self.manifest, pages, self.root_digest)

    def _content(self, page: pb.Page) -> bytes:
        data = decode_page(page)
        if len(data) != PAGE_SIZE or page_digest(data) != page.digest:
            raise _page_mismatch(self.id, page.digest)
        return data

    @classmethod
    def pack(cls, checkpoint: Checkpoint) -> PackedCheckpoint:
        """Compresses each page once, for a checkpoint built in this process. The root
        digest is taken as it is: packing does not make a damaged checkpoint whole."""
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        return cls(checkpoint.manifest,
                   {digest: encode_page(digest, data, compressor)
                    for digest, data in checkpoint.pages.items()},
                   checkpoint.root_digest)

    # --- serialisation ----------------------------------------------------------

    def to_bytes(self) -> bytes:
        manifest = self.manifest.SerializeToString(deterministic=True)
        out = [MAGIC, struct.pack("<I", len(manifest)), manifest,
               struct.pack("<I", len(self.pages))]
        for digest in sorted(self.pages):
            raw = self.pages[digest].SerializeToString(deterministic=True)
            out += [struct.pack("<I", len(raw)), raw]
        out.append(self.root_digest)
        return b"".join(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> PackedCheckpoint:
        """Reads a file and checks its structure and root digest (``verify_root``);
        page contents are checked by ``verify``, ``unpack`` or the target board."""
        reader = _Reader(data)
        if reader.take(len(MAGIC)) != MAGIC:
            raise CheckpointCorrupt("not a genode-cr checkpoint (bad magic)")
        manifest = pb.Manifest()
        pages: dict[bytes, pb.Page] = {}
        try:
            manifest.ParseFromString(reader.take(reader.u32()))
            for _ in range(reader.u32()):
                page = pb.Page()
                page.ParseFromString(reader.take(reader.u32()))
                check_page(page)
                if page.digest in pages:
                    raise CheckpointCorrupt(f"page {page.digest.hex()[:16]} is stored twice")
                pages[page.digest] = page
        except DecodeError as error:
            raise CheckpointCorrupt(f"undecodable checkpoint: {error}") from error
        root = reader.take(DIGEST_SIZE)
        if not reader.at_end():
            raise CheckpointCorrupt("trailing bytes after the checkpoint")
        packed = cls(manifest, pages, root)
        packed.verify_root()
        return packed


def named_digests(manifest: pb.Manifest) -> set[bytes]:
    """The non-zero digests a manifest names: every entry of its whole page lists and
    every changed entry of its delta lists. For a checkpoint without delta lists these
    are all the pages it refers to. For one with them, the rest of its lists is its
    parent's, whose pages the chain checks took care of at the parent; so "every digest
    a checkpoint names is carried by it or an earlier one of the chain", checked for
    each checkpoint in order, is the same as checking every page of every resolved
    list, without resolving. The whole set takes the chain: ``resolve_page_lists``."""
    return ({d for ds in manifest.dataspaces for d in ds.pages if d}
            | {u.digest for ds in manifest.dataspaces for u in ds.changed if u.digest})


def encode_page(digest: bytes, data: bytes, compressor: zstandard.ZstdCompressor) -> pb.Page:
    """A page as it travels and is stored: zstd-compressed, digest over the raw bytes."""
    return pb.Page(digest=digest, compression=pb.COMPRESSION_ZSTD,
                   data=compressor.compress(data))


def check_page(page: pb.Page) -> None:
    """What a page must look like before anyone holds on to it (no decompression)."""
    if len(page.digest) != DIGEST_SIZE:
        raise CheckpointCorrupt(f"a page digest of {len(page.digest)} bytes "
                                f"(SHA-256 has {DIGEST_SIZE})")
    if page.compression not in (pb.COMPRESSION_NONE, pb.COMPRESSION_ZSTD):
        raise CheckpointCorrupt(f"unknown page compression {page.compression}")
    if len(page.data) > MAX_PAGE_DATA:
        raise CheckpointCorrupt(f"page {page.digest.hex()[:16]}: {len(page.data)} bytes of data, "
                                f"more than any {PAGE_SIZE}-byte page needs ({MAX_PAGE_DATA})")


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


#: Either shape: the chain rules need only ids, components and digests.
AnyCheckpoint = TypeVar("AnyCheckpoint", Checkpoint, PackedCheckpoint)


def order_chain(checkpoints: Iterable[AnyCheckpoint]) -> list[AnyCheckpoint]:
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
        reached = {id(c) for c in ordered}
        stray = [c.id for c in chain if id(c) not in reached]
        raise BrokenChain(f"checkpoints {', '.join(stray)} do not follow from {head.id}")
    return ordered


def verify_chain(checkpoints: Iterable[AnyCheckpoint], *,
                 each_verified: bool = False) -> list[AnyCheckpoint]:
    """What a board checks of a chain before restoring it, done offline: each
    checkpoint intact, one component, its page lists resolvable against its
    parent's (``resolve_pages``), and every page they refer to carried by some
    checkpoint up to it. Returns the chain in order.

    ``each_verified``: the caller has run ``verify()`` on every checkpoint already
    (which, for a packed one, means decompressing every page), so only the chain
    rules are left."""
    chain = order_chain(checkpoints)
    carried: set[bytes] = set()
    lists: PageLists | None = None
    for checkpoint in chain:
        if not each_verified:
            checkpoint.verify()
        if checkpoint.component != chain[0].component:
            raise BrokenChain(f"checkpoint {checkpoint.id} is of {checkpoint.component}, "
                              f"the chain of {chain[0].component}")
        lists = resolve_pages(checkpoint.manifest, lists)
        carried |= checkpoint.pages.keys()
        missing = referenced_in(lists) - carried
        if missing:
            raise BrokenChain(f"{len(missing)} page(s) referenced by {checkpoint.id} are in no "
                              "checkpoint of the chain")
    return chain


# --- page lists: whole ones, and delta lists against the parent ---------------------------

#: A checkpoint's page lists, resolved: RAM dataspace badge -> one digest per page
#: (b"" for a zero page).
PageLists = dict[int, list[bytes]]


def page_counts(manifest: pb.Manifest) -> dict[int, int]:
    """RAM dataspace badge -> its number of pages, what a child's delta lists must fit."""
    return {ds.ref.badge: ds.size // PAGE_SIZE for ds in manifest.dataspaces
            if ds.kind == pb.DATASPACE_RAM}


def check_page_lists(manifest: pb.Manifest, parent: Mapping[int, int] | None = None) -> None:
    """Raises CheckpointCorrupt unless every page list is well formed: a whole list has
    one digest per page, a delta list's changes name distinct pages inside the dataspace,
    every digest is empty or 32 bytes, delta lists only in an incremental, no page lists
    for a ROM dataspace. ``parent`` (``page_counts`` of the parent's manifest, or of its
    resolved lists) also checks that each delta list's dataspace is in the parent, with
    as many pages; without it those references stay unchecked."""
    where = f"checkpoint {manifest.id or '?'}"
    seen: set[int] = set()
    for ds in manifest.dataspaces:
        badge = ds.ref.badge
        what = f"{where}: dataspace {badge}"
        if ds.kind == pb.DATASPACE_ROM:
            if ds.pages or ds.changed or ds.pages_from_parent:
                raise CheckpointCorrupt(f"{what} is a ROM dataspace with a page list")
            continue
        if ds.kind != pb.DATASPACE_RAM:
            raise CheckpointCorrupt(f"{what} is of unknown kind {ds.kind}")
        if badge in seen:
            raise CheckpointCorrupt(f"{what} is listed twice")
        seen.add(badge)
        if ds.size % PAGE_SIZE:
            raise CheckpointCorrupt(f"{what}: size {ds.size} is not a multiple of {PAGE_SIZE}")
        count = ds.size // PAGE_SIZE
        if not ds.pages_from_parent:
            if ds.changed:
                raise CheckpointCorrupt(f"{what} has changed pages but no parent's list to "
                                        "apply them to (pages_from_parent is not set)")
            if len(ds.pages) != count:
                raise CheckpointCorrupt(f"{what} of {count} pages lists {len(ds.pages)}")
            _check_digests(what, ds.pages)
            continue
        if not manifest.parent_id:
            raise CheckpointCorrupt(f"{what} takes its pages from a parent, but a full "
                                    "checkpoint has none")
        if ds.pages:
            raise CheckpointCorrupt(f"{what} has both a whole page list and pages_from_parent")
        indexes: set[int] = set()
        for update in ds.changed:
            if update.index >= count:
                raise CheckpointCorrupt(f"{what}: changed page {update.index} is outside its "
                                        f"{count} pages")
            if update.index in indexes:
                raise CheckpointCorrupt(f"{what}: page {update.index} is changed twice")
            indexes.add(update.index)
        _check_digests(what, (u.digest for u in ds.changed))
        if parent is not None:
            if badge not in parent:
                raise CheckpointCorrupt(f"{what} takes its pages from the parent "
                                        f"{manifest.parent_id}, which has no RAM dataspace "
                                        f"{badge}")
            if parent[badge] != count:
                raise CheckpointCorrupt(f"{what} of {count} pages takes its pages from the "
                                        f"parent's, which has {parent[badge]}")


def _check_digests(what: str, digests: Iterable[bytes]) -> None:
    for digest in digests:
        if digest and len(digest) != DIGEST_SIZE:
            raise CheckpointCorrupt(f"{what}: a page digest of {len(digest)} bytes "
                                    f"(SHA-256 has {DIGEST_SIZE}, a zero page none)")


def resolve_pages(manifest: pb.Manifest, parent: PageLists | None) -> PageLists:
    """A checkpoint's whole page lists, given its parent's resolved lists (None: the
    parent's lists are not known). Checks the lists (``check_page_lists``) first.

    Raises CheckpointCorrupt for malformed lists or a delta list that does not fit its
    parent's, BrokenChain for delta lists when ``parent`` is None: a checkpoint with
    delta lists cannot be resolved alone."""
    deltas = [ds for ds in manifest.dataspaces if ds.pages_from_parent]
    check_page_lists(manifest, None if parent is None
                     else {badge: len(digests) for badge, digests in parent.items()})
    if deltas and parent is None:
        raise BrokenChain(f"checkpoint {manifest.id or '?'} lists the pages of {len(deltas)} "
                          f"dataspace(s) as changes to its parent {manifest.parent_id}'s: "
                          "resolving them needs the chain")
    lists: PageLists = {}
    for ds in manifest.dataspaces:
        if ds.kind != pb.DATASPACE_RAM:
            continue
        if not ds.pages_from_parent:
            lists[ds.ref.badge] = list(ds.pages)
            continue
        assert parent is not None
        digests = lists[ds.ref.badge] = parent[ds.ref.badge].copy()
        for update in ds.changed:
            digests[update.index] = update.digest
    return lists


def resolve_page_lists(chain: Sequence[Checkpoint | PackedCheckpoint]) -> list[PageLists]:
    """Each checkpoint's whole page lists, for a chain in order (``order_chain``): the
    full checkpoint first. The lists of one checkpoint share no list with another's."""
    out: list[PageLists] = []
    for checkpoint in chain:
        out.append(resolve_pages(checkpoint.manifest, out[-1] if out else None))
    return out


def referenced_in(lists: PageLists) -> set[bytes]:
    """Every non-zero page digest resolved page lists refer to."""
    return {digest for digests in lists.values() for digest in digests if digest}
