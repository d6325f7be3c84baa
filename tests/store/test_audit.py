"""The audit log on a real SQLite file: appended, chained, listed; refused to UPDATE and
DELETE through sqlite3 itself; an edit of the file (triggers dropped) found by verify."""

from __future__ import annotations

import sqlite3

import pytest

from migrate.errors import RequestError
from migrate.store import SqliteStore
from migrate.store.audit import GENESIS, AuditLog, verify_file

ALICE = "spiffe://genode-migrate/operator/alice"
BOB = "spiffe://genode-migrate/operator/bob"


@pytest.fixture
def audit(tmp_path):
    store = SqliteStore(tmp_path / "coordinator.sqlite")
    yield AuditLog(store)
    store.close()


def fill(log: AuditLog) -> None:
    log.append(ALICE, "ipv4:127.0.0.1:1", "StartComponent", {"name": "counter",
                                                            "board": "boardA"}, "OK",
               resource="component/counter", now=1000.0)
    log.append(BOB, "ipv4:127.0.0.1:2", "CreateMove", {"component": "counter",
                                                      "target_board": "boardB"}, "OK",
               resource="move/m1", now=1001.0)
    log.append("spiffe://genode-migrate/viewer/viewer", "ipv4:127.0.0.1:3", "KillComponent",
               {"name": "counter"}, "PERMISSION_DENIED", "may not", now=1002.0)


def test_events_are_chained_and_listed_newest_first(audit):
    fill(audit)
    events = audit.list()
    assert [e.seq for e in events] == [3, 2, 1]
    assert events[1].identity == BOB and events[1].arguments == {
        "component": "counter", "target_board": "boardB"} and events[1].resource == "move/m1"
    assert events[0].outcome == "PERMISSION_DENIED" and events[0].detail == "may not"
    assert len({e.hash for e in events}) == 3 and GENESIS not in {e.hash for e in events}
    assert [e.seq for e in audit.list(identity=ALICE)] == [1]
    assert [e.seq for e in audit.list(method="CreateMove")] == [2]
    assert [e.seq for e in audit.list(since=1001.0)] == [3, 2]
    assert [e.seq for e in audit.list(limit=1, before_seq=3)] == [2]
    result = audit.verify()
    assert result.ok and result.events == 3 and result.head_seq == 3
    assert result.head_hash == events[0].hash


def test_the_log_survives_a_reopen_and_goes_on(tmp_path):
    path = tmp_path / "coordinator.sqlite"
    with SqliteStore(path) as store:
        fill(AuditLog(store))
    with SqliteStore(path) as store:
        log = AuditLog(store)
        log.append(ALICE, "", "KillComponent", {"name": "counter"}, "OK")
        assert log.verify().ok and log.verify().events == 4


@pytest.mark.parametrize("statement", [
    "UPDATE audit SET outcome = 'OK' WHERE seq = 3",
    "UPDATE audit SET identity = 'spiffe://genode-migrate/operator/x'",
    "DELETE FROM audit WHERE seq = 2",
    "DELETE FROM audit",
])
def test_update_and_delete_through_sqlite3_are_refused(audit, statement):
    fill(audit)
    db = sqlite3.connect(audit.store.path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(statement)
    finally:
        db.close()
    assert [e.outcome for e in audit.list()] == ["PERMISSION_DENIED", "OK", "OK"]
    assert audit.verify().ok


def _tamper(path, *statements: str) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute("DROP TRIGGER audit_no_update")
        db.execute("DROP TRIGGER audit_no_delete")
        for statement in statements:
            db.execute(statement)
        db.commit()
    finally:
        db.close()


@pytest.mark.parametrize("statement, broken", [
    ("UPDATE audit SET outcome = 'OK' WHERE seq = 3", 3),                # a refusal hidden
    ("UPDATE audit SET identity = 'spiffe://genode-migrate/operator/carol' WHERE seq = 2", 2),
    ("UPDATE audit SET arguments = replace(arguments, 'boardB', 'boardC') WHERE seq = 2", 2),
    ("UPDATE audit SET time_us = time_us + 1 WHERE seq = 1", 1),
    ("UPDATE audit SET hash = zeroblob(32) WHERE seq = 1", 1),
    ("DELETE FROM audit WHERE seq = 2", 2),                              # a row removed
])
def test_an_edited_row_is_found_by_verify(audit, statement, broken):
    fill(audit)
    path = audit.store.path
    audit.store.close()
    _tamper(path, statement)
    result = verify_file(path)
    assert not result.ok and result.first_broken_seq == broken, result
    assert str(broken) in result.detail
    with SqliteStore(path) as store:         # the coordinator's view says the same
        assert AuditLog(store).verify().first_broken_seq == broken


def test_a_byte_changed_in_the_file_is_found(audit):
    fill(audit)
    path = audit.store.path
    audit.store.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = bytearray(path.read_bytes())
    at = data.find(b"boardB")
    assert at > 0
    data[at + 5] = ord("C")                  # boardB -> boardC, in the page itself
    path.write_bytes(bytes(data))
    result = verify_file(path)
    assert not result.ok and result.first_broken_seq == 2


def test_verify_of_an_empty_log_and_of_no_file(audit, tmp_path):
    assert audit.verify().ok and audit.verify().events == 0
    with pytest.raises(RequestError):
        verify_file(tmp_path / "nothing.sqlite")
