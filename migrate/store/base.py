"""What the coordinator keeps, and the two interfaces that keep it.

``MetadataStore`` holds small, transactional state: moves and their journal,
component ownership and fences, checkpoint metadata and which pages each
checkpoint carries. ``PageStore`` holds page contents, addressed by the
SHA-256 digest of the uncompressed page and kept compressed as they
travelled. The embedded defaults are SQLite (``SqliteStore``) and a directory
(``DiskPageStore``); a fleet can put PostgreSQL and an S3-compatible store
behind the same interfaces. Both are synchronous: the coordinator calls the
metadata store from its event loop (every call is short) and page I/O through
``asyncio.to_thread``.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from genode_cr.v1 import checkpoint_pb2 as pb

from ..security.signing import Signature

__all__ = [
    "TERMINAL_PHASES",
    "CheckpointMeta",
    "Fence",
    "JournalEntry",
    "MetadataStore",
    "Owner",
    "PageStore",
    "VerifyResult",
]

#: Move phases after which nothing more happens to a move.
TERMINAL_PHASES = frozenset({"done", "failed", "rolled_back", "cancelled"})


@dataclass(frozen=True)
class JournalEntry:
    seq: int                        # 1, 2, ... per move
    time: float                     # unix time
    event: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Owner:
    """The board a component runs on, and the generation of that ownership: each
    move that hands the component over raises it, so a stale owner is recognised."""
    board: str
    generation: int


@dataclass(frozen=True)
class Fence:
    """A board that must not run its copy of a component: it was unreachable when
    the component moved away, and is told to kill the copy when it returns."""
    board: str
    component: str
    generation: int                 # the generation that moved away from the board
    reason: str
    created: float                  # unix time


@dataclass(frozen=True)
class CheckpointMeta:
    id: str
    component: str
    board: str
    parent_id: str                  # "" for a full checkpoint
    sequence: int
    created: float                  # unix time, when it was stored
    pages: int                      # page contents this checkpoint carries
    page_bytes: int                 # those pages uncompressed
    stored_bytes: int               # compressed bytes it newly added to the page store
    root_digest: bytes
    rom: str
    frozen: bool
    #: Who vouched for it: the source agent as it streamed it, the coordinator as it
    #: stored it (docs/security.md, "Signed checkpoints"). Empty where signing was off.
    signatures: tuple[Signature, ...] = ()

    @property
    def is_full(self) -> bool:
        return not self.parent_id


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    detail: str
    chain_length: int
    pages_checked: int


class MetadataStore(abc.ABC):
    """Moves, journal, ownership, fences and checkpoint metadata.

    Every write is one transaction, durable when the call returns: a
    coordinator killed at any instant finds either all of a call's effect or
    none of it. Unknown ids read as None (``get_*``) or raise NotFound."""

    # --- moves and their journal ----------------------------------------------------

    @abc.abstractmethod
    def put_move(self, move_id: str, component: str, phase: str, document: dict[str, Any], *,
                 journal: tuple[str, dict[str, Any]] | None = None) -> None:
        """Creates or replaces a move; with ``journal=(event, detail)`` it also appends
        that journal entry, in the same transaction."""

    @abc.abstractmethod
    def get_move(self, move_id: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def list_moves(self, *, component: str | None = None, limit: int = 50,
                   before: str | None = None) -> list[dict[str, Any]]:
        """Newest first. ``before`` is the id of the last move of the previous page."""

    @abc.abstractmethod
    def active_moves(self) -> list[dict[str, Any]]:
        """Moves not in a terminal phase, oldest first (the order to resume them in)."""

    @abc.abstractmethod
    def journal(self, move_id: str) -> list[JournalEntry]: ...

    # --- ownership and fencing ---------------------------------------------------------

    @abc.abstractmethod
    def set_owner(self, component: str, board: str, generation: int) -> None:
        """Raises Fenced for a generation older than the stored one, or the same
        generation claimed by another board."""

    @abc.abstractmethod
    def owner(self, component: str) -> Owner | None: ...

    @abc.abstractmethod
    def owners(self) -> dict[str, Owner]: ...

    @abc.abstractmethod
    def drop_owner(self, component: str) -> None: ...

    @abc.abstractmethod
    def add_fence(self, board: str, component: str, generation: int, reason: str) -> None: ...

    @abc.abstractmethod
    def fences(self, board: str | None = None) -> list[Fence]: ...

    @abc.abstractmethod
    def remove_fence(self, board: str, component: str) -> bool:
        """True if there was such a fence."""

    # --- checkpoint metadata -----------------------------------------------------------

    @abc.abstractmethod
    def put_checkpoint(self, meta: CheckpointMeta, manifest: bytes,
                       page_digests: Iterable[bytes]) -> None:
        """Stores a checkpoint's metadata (its ``signatures`` included), its serialised
        manifest and the digests of the pages it carries. The same checkpoint again is a no-op; another one under
        a stored id is AlreadyExists; an incremental whose parent is not stored (or
        is of another component) is a RequestError."""

    @abc.abstractmethod
    def get_checkpoint(self, checkpoint_id: str) -> CheckpointMeta | None: ...

    @abc.abstractmethod
    def get_manifest(self, checkpoint_id: str) -> bytes: ...

    @abc.abstractmethod
    def list_checkpoints(self, component: str | None = None, limit: int = 100,
                         before: str | None = None) -> list[CheckpointMeta]:
        """Newest first. ``before`` is the id of the last checkpoint of the previous page."""

    @abc.abstractmethod
    def latest_checkpoint(self, component: str) -> CheckpointMeta | None: ...

    @abc.abstractmethod
    def children(self, checkpoint_id: str) -> list[CheckpointMeta]:
        """The incrementals whose parent is this checkpoint."""

    @abc.abstractmethod
    def carried_digests(self, checkpoint_id: str) -> list[bytes]:
        """The digests whose content this checkpoint carries, sorted."""

    @abc.abstractmethod
    def delete_checkpoints(self, checkpoint_ids: Iterable[str]) -> list[bytes]:
        """Deletes these checkpoints (unknown ids are skipped) and returns the digests
        no stored checkpoint carries any more. Refuses (Conflict) to leave an
        incremental without its parent."""

    @abc.abstractmethod
    def referenced(self, digests: Iterable[bytes]) -> set[bytes]:
        """Which of these digests some stored checkpoint carries."""

    def close(self) -> None:
        """Releases the store; further calls fail."""


class PageStore(abc.ABC):
    """Page contents by the SHA-256 digest of the uncompressed page, stored as they
    travelled (``compression`` is a genode_cr.v1 Compression value). ``put`` and
    ``get`` never decompress; only ``verify`` does."""

    @abc.abstractmethod
    def put(self, digest: bytes, compression: int, data: bytes) -> int:
        """Stores a page unless it is there; returns the bytes newly stored (0 if it was)."""

    @abc.abstractmethod
    def get(self, digest: bytes) -> tuple[int, bytes]:
        """(compression, data); raises DataLoss for a page that is not there."""

    @abc.abstractmethod
    def has(self, digest: bytes) -> bool: ...

    @abc.abstractmethod
    def delete(self, digest: bytes) -> int:
        """Removes a page; returns the bytes freed (0 if it was not there)."""

    @abc.abstractmethod
    def verify(self, digest: bytes) -> bool:
        """True if the page is there and its content matches its digest."""

    @abc.abstractmethod
    def digests(self) -> Iterator[bytes]:
        """Every stored digest (for garbage collection)."""

    @abc.abstractmethod
    def size_on_disk(self) -> int: ...

    def get_page(self, digest: bytes) -> pb.Page:
        """The page as it travels."""
        compression, data = self.get(digest)
        return pb.Page(digest=digest, compression=compression, data=data)  # type: ignore[arg-type]

    def close(self) -> None:
        """Releases the store."""
