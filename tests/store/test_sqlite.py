"""The SQLite metadata store: moves and journal, ownership and fences, checkpoint
metadata, schema, and what survives a process that dies."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from migrate.errors import (
    AlreadyExists, Conflict, DataLoss, Fenced, MigrateError, NotFound, PreconditionFailed,
    RequestError,
)
from migrate.store import CheckpointMeta, Fence, Owner, SqliteStore

REPO = Path(__file__).resolve().parents[2]


def doc(move_id: str, phase: str = "pending", **more) -> dict:
    return {"id": move_id, "phase": phase, **more}


# --- moves ------------------------------------------------------------------------------

def test_put_move_upserts_and_keeps_creation_order(meta):
    meta.put_move("m1", "counter", "pending", doc("m1"))
    meta.put_move("m2", "kvstore", "pending", doc("m2"))
    meta.put_move("m1", "counter", "pre_copy", doc("m1", "pre_copy", round=2))
    assert meta.get_move("m1") == doc("m1", "pre_copy", round=2)
    assert meta.get_move("nope") is None
    # updating m1 does not make it newer than m2
    assert [m["id"] for m in meta.list_moves()] == ["m2", "m1"]


def test_list_moves_pages_newest_first(meta):
    for i in range(7):
        meta.put_move(f"move-{i}", "counter" if i % 2 else "kvstore", "done", doc(f"move-{i}"))
    seen, before = [], None
    while True:
        page = meta.list_moves(limit=3, before=before)
        seen += [m["id"] for m in page]
        if len(page) < 3:
            break
        before = page[-1]["id"]
    assert seen == [f"move-{i}" for i in reversed(range(7))]
    assert [m["id"] for m in meta.list_moves(component="counter", limit=2)] == ["move-5", "move-3"]
    assert [m["id"] for m in meta.list_moves(component="counter", before="move-3")] == ["move-1"]
    with pytest.raises(RequestError, match="page token"):
        meta.list_moves(before="never-stored")
    with pytest.raises(RequestError):
        meta.list_moves(limit=0)


def test_active_moves_leave_out_terminal_phases(meta):
    phases = ["pending", "done", "pre_copy", "failed", "commit", "rolled_back", "cancelled"]
    for i, phase in enumerate(phases):
        meta.put_move(f"m{i}", "counter", phase, doc(f"m{i}", phase))
    assert [m["phase"] for m in meta.active_moves()] == ["pending", "pre_copy", "commit"]


def test_journal_is_in_order_per_move(meta):
    meta.put_move("m1", "counter", "pending", doc("m1"), journal=("created", {"by": "cli"}))
    meta.put_move("m2", "counter", "pending", doc("m2"), journal=("created", {}))
    meta.put_move("m1", "counter", "preflight", doc("m1", "preflight"),
                  journal=("phase", {"phase": "preflight"}))
    meta.put_move("m1", "counter", "preflight", doc("m1", "preflight", checks=3))
    entries = meta.journal("m1")
    assert [(e.seq, e.event, e.detail) for e in entries] == [
        (1, "created", {"by": "cli"}), (2, "phase", {"phase": "preflight"})]
    assert entries[0].time <= entries[1].time
    assert [e.seq for e in meta.journal("m2")] == [1]
    with pytest.raises(NotFound):
        meta.journal("m3")


def test_a_move_and_its_journal_entry_land_together_or_not_at_all(meta):
    meta.put_move("m1", "counter", "pending", doc("m1"), journal=("created", {}))
    # Another connection makes the journal insert fail, mid-transaction, after the
    # move's row was updated: neither may land.
    other = sqlite3.connect(meta.path)
    other.execute("CREATE TRIGGER fail BEFORE INSERT ON journal "
                  "BEGIN SELECT RAISE(ABORT, 'simulated failure'); END")
    other.commit()
    with pytest.raises(MigrateError, match="simulated failure"):
        meta.put_move("m1", "counter", "commit", doc("m1", "commit"), journal=("phase", {}))
    assert meta.get_move("m1") == doc("m1")
    assert [e.event for e in meta.journal("m1")] == ["created"]
    assert [m["phase"] for m in meta.active_moves()] == ["pending"]

    other.execute("DROP TRIGGER fail")
    other.commit()
    other.close()
    meta.put_move("m1", "counter", "commit", doc("m1", "commit"), journal=("phase", {}))
    assert meta.get_move("m1")["phase"] == "commit"
    assert [e.event for e in meta.journal("m1")] == ["created", "phase"]


def test_bad_move_input_is_refused_and_stores_nothing(meta):
    with pytest.raises(RequestError, match="not JSON"):
        meta.put_move("m1", "counter", "pending", {"when": object()})
    with pytest.raises(RequestError, match="not JSON"):
        meta.put_move("m1", "counter", "pending", doc("m1"), journal=("created", {"x": {1, 2}}))
    with pytest.raises(RequestError):
        meta.put_move("", "counter", "pending", doc(""))
    assert meta.get_move("m1") is None
    assert meta.list_moves() == []


# --- ownership and fences -------------------------------------------------------------------

def test_owners_and_generations(meta):
    assert meta.owner("counter") is None
    meta.set_owner("counter", "boardA", 1)
    meta.set_owner("kvstore", "boardB", 4)
    meta.set_owner("counter", "boardA", 1)          # the same claim again is fine
    meta.set_owner("counter", "boardB", 2)
    assert meta.owner("counter") == Owner("boardB", 2)
    with pytest.raises(Fenced):
        meta.set_owner("counter", "boardA", 1)      # a stale generation
    with pytest.raises(Fenced):
        meta.set_owner("counter", "boardC", 2)      # the same generation, another board
    assert meta.owners() == {"counter": Owner("boardB", 2), "kvstore": Owner("boardB", 4)}
    meta.drop_owner("kvstore")
    assert meta.owners() == {"counter": Owner("boardB", 2)}
    with pytest.raises(RequestError):
        meta.set_owner("counter", "boardB", -1)


def test_fences(meta):
    meta.add_fence("boardA", "counter", 2, "unreachable at confirm")
    meta.add_fence("boardA", "kvstore", 1, "unreachable at confirm")
    meta.add_fence("boardC", "counter", 1, "lost")
    meta.add_fence("boardA", "counter", 1, "again")     # never lowers the generation
    fences = meta.fences("boardA")
    assert [(f.component, f.generation, f.reason) for f in fences] == [
        ("counter", 2, "again"), ("kvstore", 1, "unreachable at confirm")]
    assert all(isinstance(f, Fence) and f.created > 0 for f in fences)
    assert [(f.board, f.component) for f in meta.fences()] == [
        ("boardA", "counter"), ("boardA", "kvstore"), ("boardC", "counter")]
    assert meta.remove_fence("boardA", "counter") is True
    assert meta.remove_fence("boardA", "counter") is False
    assert [f.component for f in meta.fences("boardA")] == ["kvstore"]


# --- checkpoint metadata --------------------------------------------------------------------

def meta_record(checkpoint_id: str, parent: str = "", component: str = "counter",
                root: bytes = b"\x01" * 32) -> CheckpointMeta:
    return CheckpointMeta(id=checkpoint_id, component=component, board="boardA",
                          parent_id=parent, sequence=0, created=1_700_000_000.5, pages=2,
                          page_bytes=8192, stored_bytes=100, root_digest=root, rom="counter",
                          frozen=False)


D1, D2, D3 = (bytes([n]) * 32 for n in (1, 2, 3))


def test_checkpoint_metadata_round_trip_and_paging(meta):
    meta.put_checkpoint(meta_record("c1"), b"manifest-1", [D2, D1, D1])
    meta.put_checkpoint(meta_record("c2", parent="c1"), b"manifest-2", [D3])
    meta.put_checkpoint(meta_record("k1", component="kvstore"), b"k", [D1])
    assert meta.get_checkpoint("c2") == meta_record("c2", parent="c1")
    assert meta.get_checkpoint("c9") is None
    assert meta.get_manifest("c1") == b"manifest-1"
    assert meta.carried_digests("c1") == [D1, D2]
    assert [c.id for c in meta.children("c1")] == ["c2"]
    assert meta.latest_checkpoint("counter").id == "c2"
    assert meta.latest_checkpoint("ticker") is None
    assert [c.id for c in meta.list_checkpoints()] == ["k1", "c2", "c1"]
    assert [c.id for c in meta.list_checkpoints(limit=2, before="k1")] == ["c2", "c1"]
    assert [c.id for c in meta.list_checkpoints("counter", before="c2")] == ["c1"]
    assert meta.referenced([D1, D3, b"\x09" * 32]) == {D1, D3}
    with pytest.raises(NotFound):
        meta.get_manifest("c9")
    with pytest.raises(NotFound):
        meta.carried_digests("c9")


def test_put_checkpoint_refuses_a_missing_parent_and_a_different_twin(meta):
    with pytest.raises(RequestError, match="parent c0 is not stored"):
        meta.put_checkpoint(meta_record("c1", parent="c0"), b"m", [D1])
    meta.put_checkpoint(meta_record("c1"), b"m", [D1])
    meta.put_checkpoint(meta_record("c1"), b"m", [D1])                 # a retry: no-op
    with pytest.raises(AlreadyExists):
        meta.put_checkpoint(meta_record("c1", root=b"\x02" * 32), b"m", [D1])
    with pytest.raises(RequestError, match="parent of counter"):
        meta.put_checkpoint(meta_record("k2", parent="c1", component="kvstore"), b"m", [D2])
    assert [c.id for c in meta.list_checkpoints()] == ["c1"]


def test_delete_checkpoints_returns_pages_nobody_carries_and_never_orphans(meta):
    meta.put_checkpoint(meta_record("c1"), b"m", [D1, D2])
    meta.put_checkpoint(meta_record("c2", parent="c1"), b"m", [D3])
    meta.put_checkpoint(meta_record("x1"), b"m", [D2])
    with pytest.raises(Conflict, match="without its parent"):
        meta.delete_checkpoints(["c1"])
    assert meta.get_checkpoint("c1") is not None
    assert sorted(meta.delete_checkpoints(["c2", "c1", "unknown"])) == [D1, D3]
    assert meta.get_checkpoint("c1") is None and meta.get_checkpoint("c2") is None
    assert meta.referenced([D1, D2, D3]) == {D2}
    assert meta.delete_checkpoints(["x1"]) == [D2]


# --- the file: schema, reopening, a process that dies --------------------------------------

def test_two_stores_on_one_file_see_each_others_commits(tmp_path):
    first = SqliteStore(tmp_path / "s.sqlite")
    first.put_move("m1", "counter", "pending", doc("m1"), journal=("created", {}))
    second = SqliteStore(tmp_path / "s.sqlite")     # the first is never closed
    assert second.get_move("m1") == doc("m1")
    second.put_move("m1", "counter", "done", doc("m1", "done"), journal=("phase", {}))
    assert first.get_move("m1")["phase"] == "done"
    assert [e.event for e in first.journal("m1")] == ["created", "phase"]
    assert first.path.with_name("s.sqlite-wal").exists()     # WAL mode
    second.close()
    first.close()


WRITER = textwrap.dedent("""
    import sys
    from migrate.store import SqliteStore
    store = SqliteStore(sys.argv[1])
    step = 0
    while True:
        step += 1
        store.put_move("m1", "counter", "pre_copy", {"id": "m1", "step": step},
                       journal=("round", {"step": step}))
        print(step, flush=True)
""")


def test_a_writer_killed_at_any_instant_leaves_move_and_journal_consistent(tmp_path):
    """SIGKILL a process that commits move updates as fast as it can: what it
    reported committed is there, and each stored move matches its journal."""
    path = tmp_path / "s.sqlite"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        committed = 0
        deadline = time.monotonic() + 30
        while committed < 25:
            line = writer.stdout.readline()
            assert line, f"the writer stopped (exit {writer.poll()})"
            committed = int(line)
            assert time.monotonic() < deadline
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    store = SqliteStore(path)
    step = store.get_move("m1")["step"]
    journal = store.journal("m1")
    assert step >= committed
    assert [e.detail["step"] for e in journal] == list(range(1, step + 1))
    store.put_move("m1", "counter", "done", {"id": "m1", "step": step + 1},
                   journal=("done", {}))
    assert store.active_moves() == []
    store.close()


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    SqliteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    with pytest.raises(PreconditionFailed, match="schema 99"):
        SqliteStore(path)


def test_a_file_that_is_no_database_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(DataLoss):
        SqliteStore(path)


def test_a_closed_store_refuses_calls(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite")
    store.close()
    with pytest.raises(MigrateError, match="closed"):
        store.get_move("m1")
