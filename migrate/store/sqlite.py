"""The embedded metadata store: one SQLite file.

A coordinator may be killed at any instant, so every write is one
transaction (``BEGIN IMMEDIATE`` .. ``COMMIT``) in WAL mode with
``synchronous=FULL``: when a call returns, its effect survives a crash, and a
crash during a call leaves none of it. Foreign keys back the rules the calls
check first (a journal entry belongs to a move, an incremental to a stored
parent, a carried page to its checkpoint). One connection serves the
process, behind a lock; other processes may open the same file.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from ..errors import (
    AlreadyExists, Conflict, DataLoss, Fenced, InternalError, MigrateError, NotFound,
    PreconditionFailed, RequestError, Unavailable,
)
from ..security.signing import Signature
from .base import TERMINAL_PHASES, CheckpointMeta, Fence, JournalEntry, MetadataStore, Owner

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

SCHEMA_VERSION = 2
#: How long a write waits for another process's transaction before it gives up.
BUSY_TIMEOUT_S = 10.0
MAX_PAGE_SIZE = 1000
DIGEST_SIZE = 32

_SCHEMA = [
    # seq orders moves by creation (ids are opaque); it is the paging key.
    """CREATE TABLE moves (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        component TEXT NOT NULL,
        phase TEXT NOT NULL,
        document TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL)""",
    "CREATE INDEX moves_by_component ON moves (component, seq)",
    "CREATE INDEX moves_by_phase ON moves (phase)",
    """CREATE TABLE journal (
        move_id TEXT NOT NULL REFERENCES moves (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        time REAL NOT NULL,
        event TEXT NOT NULL,
        detail TEXT NOT NULL,
        PRIMARY KEY (move_id, seq)) WITHOUT ROWID""",
    """CREATE TABLE owners (
        component TEXT PRIMARY KEY,
        board TEXT NOT NULL,
        generation INTEGER NOT NULL,
        updated REAL NOT NULL)""",
    """CREATE TABLE fences (
        board TEXT NOT NULL,
        component TEXT NOT NULL,
        generation INTEGER NOT NULL,
        reason TEXT NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (board, component))""",
    """CREATE TABLE checkpoints (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        component TEXT NOT NULL,
        board TEXT NOT NULL,
        parent_id TEXT REFERENCES checkpoints (id),
        sequence INTEGER NOT NULL,
        created REAL NOT NULL,
        pages INTEGER NOT NULL,
        page_bytes INTEGER NOT NULL,
        stored_bytes INTEGER NOT NULL,
        root_digest BLOB NOT NULL,
        rom TEXT NOT NULL,
        frozen INTEGER NOT NULL,
        manifest BLOB NOT NULL)""",
    "CREATE INDEX checkpoints_by_component ON checkpoints (component, seq)",
    "CREATE INDEX checkpoints_by_parent ON checkpoints (parent_id)",
    # The page reference table: which checkpoint carries which page content.
    """CREATE TABLE carried_pages (
        checkpoint_id TEXT NOT NULL REFERENCES checkpoints (id) ON DELETE CASCADE,
        digest BLOB NOT NULL,
        PRIMARY KEY (checkpoint_id, digest)) WITHOUT ROWID""",
    "CREATE INDEX carried_pages_by_digest ON carried_pages (digest)",
]
# Schema 2: who signed each checkpoint (the source agent, the coordinator).
_SIGNATURES_SCHEMA = [
    """CREATE TABLE checkpoint_signatures (
        checkpoint_id TEXT NOT NULL REFERENCES checkpoints (id) ON DELETE CASCADE,
        signer TEXT NOT NULL,
        algorithm TEXT NOT NULL,
        signature BLOB NOT NULL,
        PRIMARY KEY (checkpoint_id, signer)) WITHOUT ROWID""",
]

_CHECKPOINT_COLUMNS = ("id, component, board, parent_id, sequence, created, pages, page_bytes, "
                       "stored_bytes, root_digest, rom, frozen")


def _store_error(error: sqlite3.Error) -> MigrateError:
    name = getattr(error, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return DataLoss(f"metadata store is damaged: {error}")
    if isinstance(error, sqlite3.OperationalError):
        # busy, locked, disk full, I/O error: the state is intact, try again later
        return Unavailable(f"metadata store: {error}")
    return InternalError(f"metadata store: {error}")


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise RequestError(f"{what} is not JSON: {error}") from None


def _name(value: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise RequestError(f"{what} must be a non-empty string, not {value!r}")
    return value


def _generation(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RequestError(f"a generation is a non-negative integer, not {value!r}")
    return value


def _limit(value: int) -> int:
    if not isinstance(value, int) or not 1 <= value <= MAX_PAGE_SIZE:
        raise RequestError(f"page size must be 1..{MAX_PAGE_SIZE}, not {value!r}")
    return value


def _digest(value: bytes) -> bytes:
    if not isinstance(value, bytes) or len(value) != DIGEST_SIZE:
        raise RequestError(f"a page digest is {DIGEST_SIZE} bytes (SHA-256), not {value!r:.40}")
    return value


def _checkpoint(row: sqlite3.Row | tuple) -> CheckpointMeta:
    (id_, component, board, parent_id, sequence, created, pages, page_bytes, stored_bytes,
     root_digest, rom, frozen) = row
    return CheckpointMeta(id=id_, component=component, board=board, parent_id=parent_id or "",
                          sequence=sequence, created=created, pages=pages, page_bytes=page_bytes,
                          stored_bytes=stored_bytes, root_digest=bytes(root_digest), rom=rom,
                          frozen=bool(frozen))


def _signed(db: sqlite3.Connection, meta: CheckpointMeta) -> CheckpointMeta:
    """The checkpoint with its stored signatures. One whose signer no longer parses
    as an identity (the file was edited) is left out: the checkpoint then counts as
    not signed by anyone the coordinator trusts, and a restore refuses it."""
    rows = db.execute("SELECT signer, algorithm, signature FROM checkpoint_signatures "
                      "WHERE checkpoint_id = ? ORDER BY signer", (meta.id,)).fetchall()
    signatures = []
    for signer, algorithm, value in rows:
        try:
            signatures.append(Signature.parse(signer, algorithm, bytes(value)))
        except MigrateError:
            continue
    return dataclasses.replace(meta, signatures=tuple(signatures)) if signatures else meta


class SqliteStore(MetadataStore):
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves.
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                 check_same_thread=False)
        except (OSError, sqlite3.Error) as error:
            raise Unavailable(f"cannot open the metadata store {self.path}: {error}") from error
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            self._db = db
            self._migrate()
        except BaseException as error:
            db.close()
            self._db = None
            if isinstance(error, sqlite3.Error):
                raise _store_error(error) from error
            raise

    def _migrate(self) -> None:
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise PreconditionFailed(
                    f"metadata store {self.path} has schema {version}; this version of "
                    f"genode-migrate knows schema {SCHEMA_VERSION} and older")
            if version == 0:
                for statement in _SCHEMA:
                    db.execute(statement)
            if version < 2:
                for statement in _SIGNATURES_SCHEMA:
                    db.execute(statement)
            if version < SCHEMA_VERSION:
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # --- transactions -------------------------------------------------------------------

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._db
            if db is None:
                raise InternalError(f"metadata store {self.path} is closed")
            try:
                db.execute(begin)
            except sqlite3.Error as error:
                raise _store_error(error) from error
            try:
                yield db
                db.execute("COMMIT")
            except BaseException as error:
                if db.in_transaction:   # some errors (disk full) have rolled back already
                    try:
                        db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                if isinstance(error, sqlite3.Error):
                    raise _store_error(error) from error
                raise

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so a read-then-write cannot be
        # overtaken by another process between the two.
        return self._transaction("BEGIN IMMEDIATE")

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        # A snapshot, so that a multi-statement read sees one state.
        return self._transaction("BEGIN")

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- moves and their journal --------------------------------------------------------

    def put_move(self, move_id: str, component: str, phase: str, document: dict[str, Any], *,
                 journal: tuple[str, dict[str, Any]] | None = None) -> None:
        _name(move_id, "a move id")
        _name(component, "a component")
        _name(phase, "a phase")
        text = _json(document, f"move {move_id}")
        if journal is not None:
            event, detail = journal
            _name(event, "a journal event")
            detail_text = _json(detail or {}, f"the journal detail of {move_id}")
        now = time.time()
        with self._write() as db:
            db.execute(
                "INSERT INTO moves (id, component, phase, document, created, updated) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "component = excluded.component, phase = excluded.phase, "
                "document = excluded.document, updated = excluded.updated",
                (move_id, component, phase, text, now, now))
            if journal is not None:
                db.execute(
                    "INSERT INTO journal (move_id, seq, time, event, detail) "
                    "SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ? FROM journal WHERE move_id = ?",
                    (move_id, now, event, detail_text, move_id))

    def get_move(self, move_id: str) -> dict[str, Any] | None:
        with self._read() as db:
            row = db.execute("SELECT document FROM moves WHERE id = ?", (move_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def list_moves(self, *, component: str | None = None, limit: int = 50,
                   before: str | None = None) -> list[dict[str, Any]]:
        _limit(limit)
        with self._read() as db:
            rows = self._page(db, "moves", "document", component, limit, before).fetchall()
        return [json.loads(document) for (document,) in rows]

    def active_moves(self) -> list[dict[str, Any]]:
        done = sorted(TERMINAL_PHASES)
        with self._read() as db:
            rows = db.execute(
                f"SELECT document FROM moves WHERE phase NOT IN ({', '.join('?' * len(done))}) "
                "ORDER BY seq", done).fetchall()
        return [json.loads(document) for (document,) in rows]

    def journal(self, move_id: str) -> list[JournalEntry]:
        with self._read() as db:
            if db.execute("SELECT 1 FROM moves WHERE id = ?", (move_id,)).fetchone() is None:
                raise NotFound(f"no move {move_id!r}")
            rows = db.execute("SELECT seq, time, event, detail FROM journal WHERE move_id = ? "
                              "ORDER BY seq", (move_id,)).fetchall()
        return [JournalEntry(seq, when, event, json.loads(detail))
                for seq, when, event, detail in rows]

    @staticmethod
    def _page(db: sqlite3.Connection, table: str, columns: str, component: str | None,
              limit: int, before: str | None) -> sqlite3.Cursor:
        """One page, newest first, of moves or checkpoints; ``before`` names the last
        row of the previous page."""
        where, args = [], []
        if component:
            where.append("component = ?")
            args.append(component)
        if before:
            row = db.execute(f"SELECT seq FROM {table} WHERE id = ?", (before,)).fetchone()
            if row is None:
                raise RequestError(f"page token {before!r} names nothing stored "
                                   "(deleted since?): start again from the first page")
            where.append("seq < ?")
            args.append(row[0])
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return db.execute(f"SELECT {columns} FROM {table} {clause} ORDER BY seq DESC LIMIT ?",
                          (*args, limit))

    # --- ownership and fencing ---------------------------------------------------------

    def set_owner(self, component: str, board: str, generation: int) -> None:
        _name(component, "a component")
        _name(board, "a board")
        _generation(generation)
        with self._write() as db:
            row = db.execute("SELECT board, generation FROM owners WHERE component = ?",
                             (component,)).fetchone()
            if row is not None:
                old_board, old_generation = row
                if generation < old_generation or (generation == old_generation
                                                   and board != old_board):
                    raise Fenced(
                        f"{component} is owned by {old_board} at generation {old_generation}; "
                        f"{board} at generation {generation} is stale",
                        metadata={"component": component, "owner": old_board,
                                  "generation": str(old_generation)})
            db.execute("INSERT INTO owners (component, board, generation, updated) "
                       "VALUES (?, ?, ?, ?) ON CONFLICT (component) DO UPDATE SET "
                       "board = excluded.board, generation = excluded.generation, "
                       "updated = excluded.updated",
                       (component, board, generation, time.time()))

    def owner(self, component: str) -> Owner | None:
        with self._read() as db:
            row = db.execute("SELECT board, generation FROM owners WHERE component = ?",
                             (component,)).fetchone()
        return Owner(*row) if row else None

    def owners(self) -> dict[str, Owner]:
        with self._read() as db:
            rows = db.execute("SELECT component, board, generation FROM owners "
                              "ORDER BY component").fetchall()
        return {component: Owner(board, generation) for component, board, generation in rows}

    def drop_owner(self, component: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM owners WHERE component = ?", (component,))

    def add_fence(self, board: str, component: str, generation: int, reason: str) -> None:
        _name(board, "a board")
        _name(component, "a component")
        _generation(generation)
        with self._write() as db:
            db.execute("INSERT INTO fences (board, component, generation, reason, created) "
                       "VALUES (?, ?, ?, ?, ?) ON CONFLICT (board, component) DO UPDATE SET "
                       "generation = MAX(generation, excluded.generation), "
                       "reason = excluded.reason",
                       (board, component, generation, reason or "", time.time()))

    def fences(self, board: str | None = None) -> list[Fence]:
        query = "SELECT board, component, generation, reason, created FROM fences"
        with self._read() as db:
            if board is None:
                rows = db.execute(f"{query} ORDER BY board, component").fetchall()
            else:
                rows = db.execute(f"{query} WHERE board = ? ORDER BY component",
                                  (board,)).fetchall()
        return [Fence(*row) for row in rows]

    def remove_fence(self, board: str, component: str) -> bool:
        with self._write() as db:
            return db.execute("DELETE FROM fences WHERE board = ? AND component = ?",
                              (board, component)).rowcount > 0

    # --- checkpoint metadata -----------------------------------------------------------

    def put_checkpoint(self, meta: CheckpointMeta, manifest: bytes,
                       page_digests: Iterable[bytes]) -> None:
        _name(meta.id, "a checkpoint id")
        _name(meta.component, "a component")
        _digest(meta.root_digest)
        digests = sorted({_digest(d) for d in page_digests})
        with self._write() as db:
            row = db.execute("SELECT root_digest FROM checkpoints WHERE id = ?",
                             (meta.id,)).fetchone()
            if row is not None:
                if bytes(row[0]) == meta.root_digest:
                    return      # stored already: a retried save
                raise AlreadyExists(f"another checkpoint {meta.id} is stored already "
                                    "(its root digest differs)")
            if meta.parent_id:
                parent = db.execute("SELECT component FROM checkpoints WHERE id = ?",
                                    (meta.parent_id,)).fetchone()
                if parent is None:
                    raise RequestError(f"incremental checkpoint {meta.id}: its parent "
                                       f"{meta.parent_id} is not stored")
                if parent[0] != meta.component:
                    raise RequestError(f"checkpoint {meta.id} of {meta.component} names a "
                                       f"parent of {parent[0]}")
            db.execute(
                f"INSERT INTO checkpoints ({_CHECKPOINT_COLUMNS}, manifest) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (meta.id, meta.component, meta.board, meta.parent_id or None, meta.sequence,
                 meta.created, meta.pages, meta.page_bytes, meta.stored_bytes, meta.root_digest,
                 meta.rom, int(meta.frozen), bytes(manifest)))
            db.executemany("INSERT INTO carried_pages (checkpoint_id, digest) VALUES (?, ?)",
                           ((meta.id, d) for d in digests))
            db.executemany("INSERT INTO checkpoint_signatures (checkpoint_id, signer, "
                           "algorithm, signature) VALUES (?, ?, ?, ?)",
                           ((meta.id, s.signer.uri, s.algorithm, s.value)
                            for s in {s.signer: s for s in meta.signatures}.values()))

    def get_checkpoint(self, checkpoint_id: str) -> CheckpointMeta | None:
        with self._read() as db:
            row = db.execute(f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints WHERE id = ?",
                             (checkpoint_id,)).fetchone()
            return _signed(db, _checkpoint(row)) if row else None

    def get_manifest(self, checkpoint_id: str) -> bytes:
        with self._read() as db:
            row = db.execute("SELECT manifest FROM checkpoints WHERE id = ?",
                             (checkpoint_id,)).fetchone()
        if row is None:
            raise NotFound(f"no checkpoint {checkpoint_id!r}")
        return bytes(row[0])

    def list_checkpoints(self, component: str | None = None, limit: int = 100,
                         before: str | None = None) -> list[CheckpointMeta]:
        _limit(limit)
        with self._read() as db:
            rows = self._page(db, "checkpoints", _CHECKPOINT_COLUMNS, component, limit,
                              before).fetchall()
            return [_signed(db, _checkpoint(row)) for row in rows]

    def latest_checkpoint(self, component: str) -> CheckpointMeta | None:
        page = self.list_checkpoints(component, limit=1) if component else []
        return page[0] if page else None

    def children(self, checkpoint_id: str) -> list[CheckpointMeta]:
        with self._read() as db:
            rows = db.execute(f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints "
                              "WHERE parent_id = ? ORDER BY seq", (checkpoint_id,)).fetchall()
            return [_signed(db, _checkpoint(row)) for row in rows]

    def carried_digests(self, checkpoint_id: str) -> list[bytes]:
        with self._read() as db:
            if db.execute("SELECT 1 FROM checkpoints WHERE id = ?",
                          (checkpoint_id,)).fetchone() is None:
                raise NotFound(f"no checkpoint {checkpoint_id!r}")
            rows = db.execute("SELECT digest FROM carried_pages WHERE checkpoint_id = ? "
                              "ORDER BY digest", (checkpoint_id,)).fetchall()
        return [bytes(d) for (d,) in rows]

    def delete_checkpoints(self, checkpoint_ids: Iterable[str]) -> list[bytes]:
        ids = list(dict.fromkeys(checkpoint_ids))
        if not ids:
            return []
        # json_each: one parameter however many ids (SQLite caps bound parameters)
        doomed = "(SELECT value FROM json_each(?))"
        ids_json = json.dumps(ids)
        with self._write() as db:
            orphan = db.execute(f"SELECT id, parent_id FROM checkpoints WHERE parent_id IN "
                                f"{doomed} AND id NOT IN {doomed} LIMIT 1",
                                (ids_json, ids_json)).fetchone()
            if orphan is not None:
                raise Conflict(f"deleting {orphan[1]} would leave checkpoint {orphan[0]} "
                               "without its parent (stored since the deletion was planned?)")
            carried = [bytes(d) for (d,) in db.execute(
                f"SELECT DISTINCT digest FROM carried_pages WHERE checkpoint_id IN {doomed}",
                (ids_json,))]
            # one statement, so that a parent and its child go together (foreign key)
            db.execute(f"DELETE FROM checkpoints WHERE id IN {doomed}", (ids_json,))
            return [d for d in carried if not self._is_carried(db, d)]

    def referenced(self, digests: Iterable[bytes]) -> set[bytes]:
        with self._read() as db:
            return {d for d in digests if self._is_carried(db, d)}

    @staticmethod
    def _is_carried(db: sqlite3.Connection, digest: bytes) -> bool:
        return db.execute("SELECT 1 FROM carried_pages WHERE digest = ? LIMIT 1",
                          (digest,)).fetchone() is not None
