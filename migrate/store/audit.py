"""The audit log: an append-only table in the coordinator's SQLite store.

One row per state-changing or refused call (``migrate.security.audit``
decides which, at the gRPC edge). Append-only twice over:

- SQLite triggers abort every UPDATE and DELETE of a row, whoever issues it
  (the coordinator, or ``sqlite3`` on the file);
- each row carries ``hash = SHA-256(previous row's hash || the row)``, so that
  an edit made with the triggers dropped, or with a byte editor, breaks the
  chain at that row: ``verify`` names the first broken one.

The chain has no secret: whoever can write the file can rewrite it from the
altered row on, and can cut rows off its end. ``verify`` reports the head
(the last row's seq and hash); an operator who keeps a head elsewhere (a
ticket, another machine's log) can show that the rows up to it are unchanged.

The table is created on first use (``CREATE ... IF NOT EXISTS``) beside the
store's own tables, through the store's connection and transactions.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..errors import RequestError
from .sqlite import SqliteStore

__all__ = ["AuditEvent", "AuditLog", "AuditVerifyResult", "GENESIS", "verify_file"]

#: The "previous hash" of the first row.
GENESIS = bytes(32)

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS audit (
        seq INTEGER PRIMARY KEY,
        time_us INTEGER NOT NULL,
        identity TEXT NOT NULL,
        peer TEXT NOT NULL,
        method TEXT NOT NULL,
        arguments TEXT NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL,
        resource TEXT NOT NULL,
        hash BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS audit_by_identity ON audit (identity, seq)",
    "CREATE INDEX IF NOT EXISTS audit_by_method ON audit (method, seq)",
    "CREATE INDEX IF NOT EXISTS audit_by_time ON audit (time_us)",
    """CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
]

_COLUMNS = "seq, time_us, identity, peer, method, arguments, outcome, detail, resource, hash"
MAX_LIST = 1000


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    time_us: int                    # unix time, microseconds
    identity: str                   # the caller's identity URI; "" if it had none
    peer: str                       # its address, as gRPC saw it
    method: str                     # e.g. "CreateMove"
    arguments: dict[str, str] = field(default_factory=dict)
    outcome: str = "OK"             # "OK" or the error's reason
    detail: str = ""                # the error's message
    resource: str = ""              # what the call made or acted on: "move/ID", ...
    hash: bytes = b""

    @property
    def time(self) -> float:
        return self.time_us / 1e6


@dataclass(frozen=True)
class AuditVerifyResult:
    ok: bool
    events: int                     # rows checked
    first_broken_seq: int           # 0 when ok
    detail: str
    head_seq: int                   # the last row (0: none)
    head_hash: bytes


def _encode(seq: int, time_us: int, identity: str, peer: str, method: str, arguments: str,
            outcome: str, detail: str, resource: str) -> bytes:
    # A JSON array: unambiguous whatever the strings hold.
    return json.dumps([seq, time_us, identity, peer, method, arguments, outcome, detail,
                       resource], separators=(",", ":"), ensure_ascii=True).encode()


def _chain(previous: bytes, row: bytes) -> bytes:
    return hashlib.sha256(previous + row).digest()


def _event(row: tuple) -> AuditEvent:
    seq, time_us, identity, peer, method, arguments, outcome, detail, resource, digest = row
    return AuditEvent(seq, time_us, identity, peer, method, json.loads(arguments), outcome,
                      detail, resource, bytes(digest))


class AuditLog:
    """The audit table of ``store`` (created if missing)."""

    def __init__(self, store: SqliteStore):
        self.store = store
        with store._write() as db:               # noqa: SLF001 - the package's own store
            for statement in _SCHEMA:
                db.execute(statement)

    def append(self, identity: str, peer: str, method: str, arguments: Mapping[str, str],
               outcome: str, detail: str = "", resource: str = "", *,
               now: float | None = None) -> AuditEvent:
        """Appends one event, chained to the last; returns it."""
        if not method or not outcome:
            raise RequestError("an audit event needs a method and an outcome")
        args = json.dumps({str(k): str(v) for k, v in arguments.items()}, sort_keys=True,
                          separators=(",", ":"))
        time_us = int((time.time() if now is None else now) * 1_000_000)
        with self.store._write() as db:          # noqa: SLF001
            last = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            seq, previous = (last[0] + 1, bytes(last[1])) if last else (1, GENESIS)
            digest = _chain(previous, _encode(seq, time_us, identity, peer, method, args,
                                              outcome, detail, resource))
            db.execute(f"INSERT INTO audit ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (seq, time_us, identity, peer, method, args, outcome, detail, resource,
                        digest))
        return AuditEvent(seq, time_us, identity, peer, method, json.loads(args), outcome,
                          detail, resource, digest)

    def list(self, *, identity: str = "", method: str = "", since: float | None = None,
             limit: int = 50, before_seq: int | None = None) -> list[AuditEvent]:
        """Events newest first; ``before_seq``: those older than that row."""
        if not 1 <= limit <= MAX_LIST:
            raise RequestError(f"page size must be 1..{MAX_LIST}, not {limit}")
        where, args = [], []
        for column, value in (("identity", identity), ("method", method)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            where.append("time_us >= ?")
            args.append(int(since * 1_000_000))
        if before_seq is not None:
            where.append("seq < ?")
            args.append(before_seq)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self.store._read() as db:           # noqa: SLF001
            rows = db.execute(f"SELECT {_COLUMNS} FROM audit {clause} ORDER BY seq DESC "
                              "LIMIT ?", (*args, limit)).fetchall()
        return [_event(row) for row in rows]

    def verify(self) -> AuditVerifyResult:
        """Recomputes the chain from the first row: the first row whose hash does not
        follow (altered, inserted, or a row missing before it)."""
        with self.store._read() as db:           # noqa: SLF001
            return _verify(db.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY seq"))


def _verify(rows) -> AuditVerifyResult:  # type: ignore[no-untyped-def]
    previous, count, expected = GENESIS, 0, 1
    for row in rows:
        seq, time_us, identity, peer, method, arguments, outcome, detail, resource, stored = row
        count += 1
        if seq != expected:
            return AuditVerifyResult(False, count, expected, f"row {expected} is missing "
                                     f"(the next row is {seq})", expected - 1, previous)
        try:
            digest = _chain(previous, _encode(seq, time_us, identity, peer, method, arguments,
                                              outcome, detail, resource))
        except (TypeError, ValueError) as error:
            digest, why = b"", f"unreadable ({error})"
        else:
            why = "its hash does not follow from the row and the one before"
        if not isinstance(stored, bytes) or digest != stored:
            return AuditVerifyResult(False, count, seq, f"row {seq} was altered: {why}",
                                     seq - 1, previous)
        previous, expected = digest, expected + 1
    return AuditVerifyResult(True, count, 0, f"{count} events, chain intact", expected - 1,
                             previous)


def verify_file(path: str | Path) -> AuditVerifyResult:
    """Verifies the audit log of a store file without a coordinator (read only)."""
    import sqlite3
    target = Path(path)
    if not target.is_file():
        raise RequestError(f"no store file {target}")
    db = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    try:
        return _verify(db.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY seq"))
    except sqlite3.Error as error:
        raise RequestError(f"{target}: cannot read an audit log: {error}") from None
    finally:
        db.close()
