"""The audit log of a real coordinator (TLS fleet): every state-changing call, made by two
different operator certificates, gives exactly one event with its identity and outcome;
a refused call is recorded; reads are not; `migrate audit` shows it and `audit verify`
finds an edited row."""

from __future__ import annotations

import json
import sqlite3

import grpc
import pytest

from migrate import errors
from migrate.cli import run as migrate
from migrate.coordinator.servicer import ACCESS
from migrate.security import Identity, Role
from migrate.security.audit import audited_methods
from migrate.security.pki import init_lab
from migrate.coordinator.servicer import coordinator_access
from migrate.v1 import coordinator_pb2 as pb
from migrate.v1 import coordinator_pb2_grpc as pb_grpc
from migrate.v1 import resources_pb2 as rpb

from .conftest import BOARDS, OPERATOR, VIEWER, counts, wait_for

ALICE = Identity(Role.OPERATOR, "alice")
BOB = OPERATOR


@pytest.fixture
def certs(fleet_certs):
    """The session's certificates plus a second operator, alice."""
    return init_lab(fleet_certs.directory, boards=BOARDS, operators=("operator", "alice"))


def client_config(tmp_path, f, identity: Identity):
    path = tmp_path / f"client-{identity.name}.toml"
    path.write_text(f'[client]\ncoordinator = "{f.coordinator.address}"\n\n[tls]\n'
                    f'ca = "{f.certs.ca}"\ncert = "{f.certs.cert(identity)}"\n'
                    f'key = "{f.certs.key(identity)}"\n')
    return path


def test_audited_methods_are_the_operator_only_ones():
    assert audited_methods(coordinator_access()) == {
        "StartComponent", "KillComponent", "CreateMove", "CancelMove", "CreateCheckpoint",
        "DeleteCheckpoint", "RestoreCheckpoint"}
    assert {"ListAuditEvents", "VerifyAuditLog"} <= set(ACCESS)


def test_every_state_changing_call_is_audited_once(fleet, certs, tmp_path, capsys):
    f = fleet()
    alice, bob = f.client(identity=ALICE), f.client(identity=BOB)
    viewer = f.client(identity=VIEWER)
    expected: list[tuple[str, str, str]] = []        # identity, method, outcome

    alice.start_component("counter", "boardA")
    expected.append((ALICE.uri, "StartComponent", "OK"))
    wait_for(lambda: len(counts(x.text for x in bob.stream_logs("counter"))) >= 2, 60,
             "counter counting")
    checkpoint = bob.create_checkpoint("counter")
    expected.append((BOB.uri, "CreateCheckpoint", "OK"))
    move = alice.create_move("counter", "boardB")
    expected.append((ALICE.uri, "CreateMove", "OK"))
    ended = list(viewer.watch_move(move.id))[-1]     # a read: not audited
    assert ended.phase == rpb.MOVE_PHASE_DONE, ended.error
    with pytest.raises(errors.PreconditionFailed):
        bob.cancel_move(move.id)                     # too late: it ended
    expected.append((BOB.uri, "CancelMove", "MOVE_ENDED"))
    with pytest.raises(errors.NotFound):
        alice.restore_checkpoint("no-such-checkpoint", "boardA")
    expected.append((ALICE.uri, "RestoreCheckpoint", "UNKNOWN_CHECKPOINT"))
    with pytest.raises(errors.PermissionDenied):
        viewer.kill_component("counter")             # refused: recorded as the viewer's
    expected.append((VIEWER.uri, "KillComponent", "PERMISSION_DENIED"))
    with pytest.raises(errors.RequestError, match="MAX_NAME_LENGTH"):
        bob.start_component("x" * 200, "boardA")     # out of bounds: recorded too
    expected.append((BOB.uri, "StartComponent", "BAD_REQUEST"))
    assert bob.delete_checkpoint(checkpoint.id).deleted == 1
    expected.append((BOB.uri, "DeleteCheckpoint", "OK"))
    bob.kill_component("counter")
    expected.append((BOB.uri, "KillComponent", "OK"))
    viewer.list_boards()
    viewer.list_moves()

    events = list(reversed(viewer.list_audit_events()))
    assert [(e.identity, e.method, e.outcome) for e in events] == expected
    assert [e.seq for e in events] == list(range(1, len(expected) + 1))
    by_method = {e.method: e for e in events if e.outcome == "OK"}
    assert by_method["CreateMove"].resource == f"move/{move.id}"
    assert by_method["CreateMove"].arguments["component"] == "counter"
    assert by_method["CreateMove"].arguments["target_board"] == "boardB"
    assert by_method["CreateCheckpoint"].resource == f"checkpoint/{checkpoint.id}"
    assert by_method["DeleteCheckpoint"].arguments == {"id": checkpoint.id}
    assert by_method["StartComponent"].arguments == {"name": "counter", "board": "boardA"}
    denied = events[5]
    assert "may not call CoordinatorService.KillComponent" in denied.detail
    assert events[6].arguments["name"] == "<200 characters>"    # bounded in the log too
    assert all(e.peer.startswith("ipv4:127.0.0.1:") for e in events)

    # Filters: by identity, by method, paged.
    assert {e.identity for e in viewer.list_audit_events(identity=ALICE.uri)} == {ALICE.uri}
    assert [e.seq for e in viewer.list_audit_events(method="KillComponent")] == [9, 6]
    assert len(viewer.list_audit_events(limit=3)) == 3
    assert viewer.verify_audit_log().ok

    # The CLI, as the viewer.
    config = client_config(tmp_path, f, VIEWER)
    capsys.readouterr()
    assert migrate(["--config", str(config), "audit", "--who", "operator/alice", "-o",
                    "json"]) == 0
    shown = json.loads(capsys.readouterr().out)["events"]
    assert [(e["method"], e["outcome"]) for e in shown] == [
        (m, o) for who, m, o in expected if who == ALICE.uri]
    assert migrate(["--config", str(config), "audit", "--since", "1h", "--limit", "2"]) == 0
    text = capsys.readouterr().out
    assert "DeleteCheckpoint" in text and "KillComponent" in text and "CreateMove" not in text
    assert migrate(["--config", str(config), "audit", "verify"]) == 0
    assert capsys.readouterr().out.startswith(f"ok: {len(expected)} events")

    # UPDATE and DELETE through sqlite3 on the live file are refused ...
    db_file = f.directory / "state" / "coordinator.sqlite"
    db = sqlite3.connect(db_file, timeout=10)
    try:
        for statement in ("UPDATE audit SET outcome = 'OK' WHERE seq = 6",
                          "DELETE FROM audit WHERE seq = 6"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                db.execute(statement)
        # ... and with the triggers dropped, an edit is found by verify, RPC and CLI.
        db.execute("DROP TRIGGER audit_no_update")
        db.execute("UPDATE audit SET outcome = 'OK', detail = '' WHERE seq = 6")
        db.commit()
    finally:
        db.close()
    result = viewer.verify_audit_log()
    assert not result.ok and result.first_broken_seq == 6 and result.head_seq == 5
    assert migrate(["--config", str(config), "audit", "verify"]) == 1
    assert "row 6" in capsys.readouterr().out
    assert migrate(["audit", "verify", "--db", str(db_file), "-o", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["first_broken_seq"] == 6


def test_agents_and_unknown_callers_cannot_read_the_log(fleet, certs):
    f = fleet(boards=("boardA",))
    with f.channel(identity=Identity(Role.AGENT, "boardA")) as channel:
        stub = pb_grpc.CoordinatorServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListAuditEvents(pb.ListAuditEventsRequest(), timeout=20)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    events = f.client(identity=VIEWER).list_audit_events()
    assert [(e.identity, e.method, e.outcome) for e in events] == [
        ("spiffe://genode-migrate/agent/boardA", "ListAuditEvents", "PERMISSION_DENIED")]
