"""The coordinator's state: moves and their journal, component ownership and
fences, stored checkpoints. Metadata lives in a MetadataStore (embedded:
SQLite), page contents in a PageStore (embedded: a directory), and
CheckpointStore combines the two for whole checkpoints."""

from .base import (
    TERMINAL_PHASES, CheckpointMeta, Fence, JournalEntry, MetadataStore, Owner, PageStore,
    VerifyResult,
)
from .checkpoints import CheckpointStore, open_embedded
from .pages import DiskPageStore
from .sqlite import SqliteStore

__all__ = [
    "TERMINAL_PHASES",
    "CheckpointMeta",
    "CheckpointStore",
    "DiskPageStore",
    "Fence",
    "JournalEntry",
    "MetadataStore",
    "Owner",
    "PageStore",
    "SqliteStore",
    "VerifyResult",
    "open_embedded",
]
