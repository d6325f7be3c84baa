"""Stored checkpoints: metadata in a MetadataStore, page contents in a PageStore.

A checkpoint is saved pages first, metadata last, so a crash in between
leaves pages nobody refers to (``collect_garbage`` removes them), never a
checkpoint whose pages are missing. Pages are shared by every checkpoint that
carries the same content; a page may go only when no stored checkpoint
carries it and no save in progress is about to. Saves in progress pin their
pages in this process, so one CheckpointStore must serve the process, and
only one process may use a DiskPageStore at a time.

An incremental checkpoint may list a dataspace's pages as the changes to its
parent's list (genode_cr.checkpoint). A save checks such lists against the
stored parent's manifest; since every stored checkpoint passed that check, the
pages its lists name are enough for the "every referenced page is carried"
rule (``named_digests``). ``verify`` resolves the whole chain.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from google.protobuf.message import DecodeError

from genode_cr import checkpoint as cr_checkpoint
from genode_cr.checkpoint import FORMAT_VERSION, PAGE_SIZE, PageLists
from genode_cr.errors import CheckpointCorrupt, CheckpointError
from genode_cr.v1 import checkpoint_pb2 as pb

from ..errors import AlreadyExists, DataLoss, MigrateError, NotFound, RequestError
from ..security.signing import Signature
from .base import CheckpointMeta, MetadataStore, PageStore, VerifyResult
from .pages import DiskPageStore
from .sqlite import SqliteStore

__all__ = ["CheckpointStore", "open_embedded"]

DIGEST_SIZE = 32
_GC_BATCH = 512


def open_embedded(state_dir: str | Path) -> CheckpointStore:
    """The embedded store of a coordinator: ``state.sqlite`` and ``pages/`` in state_dir."""
    state_dir = Path(state_dir)
    return CheckpointStore(SqliteStore(state_dir / "state.sqlite"), DiskPageStore(state_dir))


class CheckpointStore:
    def __init__(self, meta: MetadataStore, pages: PageStore):
        self.meta = meta
        self.pages = pages
        self._lock = threading.Lock()
        self._pinned: Counter[bytes] = Counter()    # pages that saves in progress carry

    def close(self) -> None:
        self.meta.close()
        self.pages.close()

    # --- saving ------------------------------------------------------------------------

    def save(self, manifest: pb.Manifest, root_digest: bytes, pages: Iterable[pb.Page], *,
             board: str, signatures: Iterable[Signature] = ()) -> CheckpointMeta:
        """Stores a checkpoint whose pages arrive compressed, as they travelled, with the
        ``signatures`` that vouch for it (checked by the caller). Each page
        is checked against its digest (a bad page under a shared digest would spoil every
        checkpoint that shares it), then the root digest, then the chain: every page the
        manifest refers to is carried by this checkpoint or one it builds on."""
        checkpoint_id = manifest.id
        if not checkpoint_id or not manifest.component:
            raise RequestError("a checkpoint manifest needs an id and a component")
        if manifest.format_version != FORMAT_VERSION:
            raise DataLoss(f"checkpoint {checkpoint_id}: format {manifest.format_version} is "
                           f"not supported (this build reads format {FORMAT_VERSION})")
        if len(root_digest) != DIGEST_SIZE:
            raise RequestError(f"checkpoint {checkpoint_id}: a root digest is {DIGEST_SIZE} "
                               f"bytes, not {len(root_digest)}")
        stored = self.meta.get_checkpoint(checkpoint_id)
        if stored is not None:
            return self._same(stored, manifest, root_digest)
        ancestors = self._ancestors_carried(manifest) if manifest.parent_id else set()
        self._check_page_lists(manifest)

        carried: list[bytes] = []     # in arrival order; the root digest sorts them
        seen: set[bytes] = set()
        new: list[bytes] = []
        stored_bytes = 0
        try:
            for page in pages:
                digest = self._check(checkpoint_id, page)
                if digest in seen:
                    continue
                self._pin(digest)
                seen.add(digest)
                carried.append(digest)
                size = self.pages.put(digest, page.compression, page.data)
                if size:
                    new.append(digest)
                    stored_bytes += size
            if cr_checkpoint.root_digest(manifest, carried) != root_digest:
                raise DataLoss(f"checkpoint {checkpoint_id}: root digest mismatch (manifest "
                               "or page set altered on the way)")
            missing = cr_checkpoint.named_digests(manifest) - ancestors - seen
            if missing:
                raise RequestError(f"checkpoint {checkpoint_id}: {len(missing)} page(s) its "
                                   "manifest refers to are carried by no checkpoint of its "
                                   "chain", reason="BROKEN_CHAIN")
            meta = CheckpointMeta(
                id=checkpoint_id, component=manifest.component,
                board=board or manifest.board, parent_id=manifest.parent_id,
                sequence=manifest.sequence, created=time.time(), pages=len(carried),
                page_bytes=len(carried) * PAGE_SIZE, stored_bytes=stored_bytes,
                root_digest=root_digest, rom=manifest.rom.name, frozen=manifest.frozen,
                signatures=tuple(signatures))
            self.meta.put_checkpoint(meta, manifest.SerializeToString(deterministic=True),
                                     carried)
        except BaseException:
            self._release(carried, discard=new)
            raise
        self._release(carried)
        saved = self.meta.get_checkpoint(checkpoint_id)
        if saved is None:   # deleted the instant it was stored
            raise NotFound(f"checkpoint {checkpoint_id} was deleted as it was stored")
        return saved

    def _same(self, stored: CheckpointMeta, manifest: pb.Manifest,
              root_digest: bytes) -> CheckpointMeta:
        """A retried save of a stored checkpoint returns it; another one under its id is refused."""
        carried = self.meta.carried_digests(stored.id)
        if (stored.root_digest == root_digest
                and cr_checkpoint.root_digest(manifest, carried) == root_digest):
            return stored
        raise AlreadyExists(f"another checkpoint {stored.id} is stored already")

    def _ancestors_carried(self, manifest: pb.Manifest) -> set[bytes]:
        parent = self.meta.get_checkpoint(manifest.parent_id)
        if parent is None:
            raise RequestError(f"incremental checkpoint {manifest.id}: its parent "
                               f"{manifest.parent_id} is not stored", reason="BROKEN_CHAIN")
        if parent.component != manifest.component:
            raise RequestError(f"checkpoint {manifest.id} of {manifest.component} names a "
                               f"parent of {parent.component}", reason="BROKEN_CHAIN")
        carried: set[bytes] = set()
        for ancestor in self.chain(parent.id):
            carried.update(self.meta.carried_digests(ancestor.id))
        return carried

    def _check_page_lists(self, manifest: pb.Manifest) -> None:
        """The page lists' shape, and each delta list against the parent's dataspace."""
        parent = (cr_checkpoint.page_counts(self.manifest(manifest.parent_id))
                  if manifest.parent_id else None)
        try:
            cr_checkpoint.check_page_lists(manifest, parent)
        except CheckpointCorrupt as error:
            raise DataLoss(str(error)) from error

    @staticmethod
    def _check(checkpoint_id: str, page: pb.Page) -> bytes:
        try:
            cr_checkpoint.check_page(page)
            raw = cr_checkpoint.decode_page(page)
        except CheckpointCorrupt as error:
            raise DataLoss(f"checkpoint {checkpoint_id}: {error}") from error
        if len(raw) != PAGE_SIZE or cr_checkpoint.page_digest(raw) != page.digest:
            raise DataLoss(f"checkpoint {checkpoint_id}: page {page.digest.hex()[:16]} does "
                           "not match its digest")
        return page.digest

    # --- pins: pages that must not go while a save is in progress ----------------------

    def _pin(self, digest: bytes) -> None:
        with self._lock:
            self._pinned[digest] += 1

    def _release(self, carried: list[bytes], discard: Iterable[bytes] = ()) -> None:
        """Unpins a save's pages; ``discard`` the ones it added, if it failed."""
        with self._lock:
            for digest in carried:
                self._pinned[digest] -= 1
                if self._pinned[digest] <= 0:
                    del self._pinned[digest]
        # The save's own error is the one to report; what this leaves behind,
        # collect_garbage removes.
        with contextlib.suppress(MigrateError):
            self._drop_pages(discard)

    def _drop_pages(self, digests: Iterable[bytes]) -> tuple[int, int]:
        """Deletes the pages no stored checkpoint carries and no save has pinned.
        Returns (pages, bytes) freed."""
        count = freed = 0
        digests = list(digests)
        for start in range(0, len(digests), _GC_BATCH):
            batch = digests[start:start + _GC_BATCH]
            # Checked and deleted under the lock: a save pins before it puts, so a page
            # is either pinned here, or carried by committed metadata, or free to go.
            with self._lock:
                carried = self.meta.referenced(batch)
                for digest in batch:
                    if digest not in carried and digest not in self._pinned:
                        size = self.pages.delete(digest)
                        count += 1 if size else 0
                        freed += size
        return count, freed

    # --- reading -----------------------------------------------------------------------

    def get(self, checkpoint_id: str) -> CheckpointMeta:
        meta = self.meta.get_checkpoint(checkpoint_id)
        if meta is None:
            raise NotFound(f"no checkpoint {checkpoint_id!r}")
        return meta

    def chain(self, checkpoint_id: str) -> list[CheckpointMeta]:
        """The checkpoint and those it builds on, the full one first."""
        chain = [self.get(checkpoint_id)]
        seen = {checkpoint_id}
        while chain[-1].parent_id:
            parent_id = chain[-1].parent_id
            if parent_id in seen:
                raise DataLoss(f"the chain of {checkpoint_id} loops at {parent_id}")
            parent = self.meta.get_checkpoint(parent_id)
            if parent is None:
                raise DataLoss(f"the chain of {checkpoint_id} is broken: {parent_id} is missing")
            seen.add(parent_id)
            chain.append(parent)
        chain.reverse()
        return chain

    def manifest(self, checkpoint_id: str) -> pb.Manifest:
        manifest = pb.Manifest()
        try:
            manifest.ParseFromString(self.meta.get_manifest(checkpoint_id))
        except DecodeError as error:
            raise DataLoss(f"the stored manifest of {checkpoint_id} is damaged: "
                           f"{error}") from error
        return manifest

    def load(self, checkpoint_id: str) -> tuple[pb.Manifest, bytes, list[pb.Page]]:
        """One checkpoint: manifest, root digest and the pages it carries as stored
        (compressed). Raises DataLoss for a page that is missing."""
        meta = self.get(checkpoint_id)
        manifest = self.manifest(checkpoint_id)
        pages = [self.pages.get_page(d) for d in self.meta.carried_digests(checkpoint_id)]
        return manifest, meta.root_digest, pages

    def verify(self, checkpoint_id: str) -> VerifyResult:
        """Checks the whole chain up to the checkpoint as a board would before restoring
        it (genode_cr.checkpoint.verify_chain), without holding the chain in memory."""
        try:
            chain = self.chain(checkpoint_id)
        except DataLoss as error:
            return VerifyResult(False, str(error), 0, 0)
        checked = 0
        carried: set[bytes] = set()
        lists: PageLists | None = None
        for meta in chain:
            try:
                manifest = self.manifest(meta.id)
            except DataLoss as error:
                return VerifyResult(False, str(error), len(chain), checked)
            digests = self.meta.carried_digests(meta.id)
            problem = ""
            if manifest.id != meta.id or manifest.component != chain[0].component:
                problem = (f"its manifest is that of {manifest.component} {manifest.id}, "
                           f"not of {chain[0].component} {meta.id}")
            elif manifest.format_version != FORMAT_VERSION:
                problem = f"format {manifest.format_version} is not supported"
            elif cr_checkpoint.root_digest(manifest, digests) != meta.root_digest:
                problem = "root digest mismatch (manifest or page set altered)"
            if problem:
                return VerifyResult(False, f"checkpoint {meta.id}: {problem}", len(chain),
                                    checked)
            try:
                lists = cr_checkpoint.resolve_pages(manifest, lists)
            except CheckpointError as error:
                return VerifyResult(False, str(error), len(chain), checked)
            for digest in digests:
                if not self.pages.has(digest):
                    problem = f"page {digest.hex()[:16]} is missing from the page store"
                elif not self.pages.verify(digest):
                    problem = f"page {digest.hex()[:16]} does not match its digest"
                if problem:
                    return VerifyResult(False, f"checkpoint {meta.id}: {problem}",
                                        len(chain), checked)
                checked += 1
            carried.update(digests)
            missing = cr_checkpoint.referenced_in(lists) - carried
            if missing:
                return VerifyResult(False, f"checkpoint {meta.id}: {len(missing)} page(s) it "
                                    "refers to are in no checkpoint of its chain",
                                    len(chain), checked)
        return VerifyResult(True, f"{len(chain)} checkpoint(s), {checked} page(s) intact",
                            len(chain), checked)

    # --- deleting ------------------------------------------------------------------------

    def delete(self, checkpoint_id: str) -> tuple[list[str], int]:
        """Deletes the checkpoint and every checkpoint that builds on it, then the pages
        nobody carries any more. Returns the ids deleted and the bytes freed."""
        self.get(checkpoint_id)
        doomed = [checkpoint_id]
        for parent_id in doomed:        # grows as it goes: breadth first
            doomed.extend(child.id for child in self.meta.children(parent_id))
        return doomed, self._drop_pages(self.meta.delete_checkpoints(doomed))[1]

    def apply_retention(self, component: str, keep: int) -> tuple[list[str], int]:
        """Keeps the newest ``keep`` checkpoints of a component and every checkpoint
        they build on; deletes the rest and the pages nobody carries any more."""
        if keep < 0:
            raise RequestError(f"keep must be 0 or more, not {keep}")
        stored = self._all(component)
        by_id = {meta.id: meta for meta in stored}
        kept: set[str] = set()
        for meta in stored[:keep]:
            while meta is not None and meta.id not in kept:
                kept.add(meta.id)
                meta = by_id.get(meta.parent_id)
        doomed = [meta.id for meta in stored if meta.id not in kept]
        if not doomed:
            return [], 0
        return doomed, self._drop_pages(self.meta.delete_checkpoints(doomed))[1]

    def _all(self, component: str) -> list[CheckpointMeta]:
        """Every checkpoint of a component, newest first."""
        out: list[CheckpointMeta] = []
        while True:
            page = self.meta.list_checkpoints(component, limit=1000,
                                              before=out[-1].id if out else None)
            out.extend(page)
            if len(page) < 1000:
                return out

    def collect_garbage(self) -> tuple[int, int]:
        """Deletes the pages no checkpoint carries (left by a crash between a save's
        pages and its metadata, or a deletion's metadata and its pages).
        Returns (pages, bytes) freed."""
        pages = freed = 0
        batch: list[bytes] = []
        for digest in self.pages.digests():
            batch.append(digest)
            if len(batch) == _GC_BATCH:
                count, size = self._drop_pages(batch)
                pages, freed, batch = pages + count, freed + size, []
        count, size = self._drop_pages(batch)
        return pages + count, freed + size
