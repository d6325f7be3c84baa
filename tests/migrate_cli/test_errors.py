"""Exit codes and error reports: each error class, sent by a coordinator as a gRPC status
with its ErrorInfo, comes back as the same class and leaves with its documented code."""

from __future__ import annotations

import json
import socket

import pytest

from genode_cr import errors as cr_errors
from migrate import errors
from migrate.cli import (EXIT_CODES, Interrupted, OperationFailed, exit_code_for)
from migrate.lab import LabFailed, LabRunning, NoLab

#: Every error a coordinator may send, and the exit code docs/cli.md promises for it.
CASES = [
    (errors.RequestError("bad value"), 2),
    (errors.NotFound("no board 'boardQ'"), 3),
    # Reasons the client has no class for keep their status: docs/api.md lists them.
    (errors.NotFound("no move 'm9'", reason="UNKNOWN_MOVE"), 3),
    (errors.RequestError("source and target are the same board", reason="SAME_BOARD"), 2),
    (errors.PreconditionFailed("move m1 has ended", reason="MOVE_ENDED"), 4),
    (errors.AlreadyExists("counter exists"), 4),
    (errors.Conflict("busy"), 4),
    (errors.AlreadyMoving("counter is moving (move m1)"), 4),
    (errors.PreconditionFailed("nope"), 4),
    (errors.PreflightFailed("rom digest differs"), 4),
    (errors.Fenced("generation 3 is stale"), 4),
    (errors.DowntimeOvershoot("300 ms cannot be met"), 4),
    (errors.Unavailable("agent boardB does not answer"), 5),
    (errors.DataLoss("page 1a2b does not match its digest"), 6),
    (errors.PermissionDenied("spiffe://genode-migrate/viewer/ci may not call "
                             "CoordinatorService.CreateMove; allowed: operator"), 7),
    (errors.Unauthenticated("the peer's certificate carries no genode-migrate identity"), 7),
    (errors.Cancelled("cancelled"), 1),
    (errors.InternalError("bug"), 1),
    (cr_errors.UnknownComponent("no component 'x' on boardA"), 3),
    (cr_errors.NameInUse("counter runs already"), 4),
    (cr_errors.RomMissing("no ROM 'nosuch'"), 4),
    (cr_errors.InsufficientQuota("not enough RAM"), 4),
    (cr_errors.CheckpointCorrupt("root digest mismatch"), 6),
    (cr_errors.BoardUnreachable("board boardA is silent"), 5),
]


@pytest.mark.parametrize("error,code", CASES, ids=lambda x: type(x).__name__ if
                         isinstance(x, Exception) else str(x))
def test_each_error_from_the_coordinator_exits_with_its_code(migrate, fake_coordinator, error,
                                                             code):
    fake, _ = fake_coordinator
    fake.fail["ListBoards"] = error
    result = migrate("boards")
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    reason = errors.reason_of(error)
    assert result.stderr.splitlines() == [f"Error: {reason}: {error}"]


@pytest.mark.parametrize("error,code", CASES[:6], ids=lambda x: type(x).__name__ if
                         isinstance(x, Exception) else str(x))
def test_json_errors_are_one_object_on_stdout(migrate, fake_coordinator, error, code):
    fake, _ = fake_coordinator
    fake.fail["ListComponents"] = error
    result = migrate("ps", "-o", "json")
    assert result.exit_code == code
    assert json.loads(result.stdout) == {"error": {
        "reason": errors.reason_of(error), "message": str(error), "exit_code": code}}
    assert len(result.stderr.splitlines()) == 1


def test_local_errors_map_too():
    assert exit_code_for(OperationFailed("move m1 rolled back")) == 1
    assert exit_code_for(Interrupted()) == 130
    assert exit_code_for(KeyboardInterrupt()) == 130
    assert exit_code_for(LabRunning("a lab runs")) == 4
    assert exit_code_for(NoLab("no lab")) == 3
    assert exit_code_for(LabFailed("boardA exited")) == 1
    assert exit_code_for(ValueError("bug")) == 1


def test_every_code_is_documented_in_the_help(migrate):
    result = migrate("--help")
    assert result.exit_code == 0
    for code in (0, 1, 2, 3, 4, 5, 6, 7, 130):
        assert f"\n  {code} " in EXIT_CODES
    assert "Exit codes:" in result.stdout and "130" in result.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_coordinator_is_exit_5(migrate):
    address = f"127.0.0.1:{_free_port()}"
    result = migrate("--timeout", "5", "boards", coordinator=address)
    assert result.exit_code == 5, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: UNAVAILABLE: ") and address in line


def test_the_coordinator_comes_from_the_client_configuration(migrate, fake_coordinator, xdg):
    fake, address = fake_coordinator
    config = xdg / "config" / "genode-migrate" / "client.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[client]\ncoordinator = "{address}"\n')
    assert migrate("boards", coordinator=None).exit_code == 0
    assert fake.calls("ListBoards")


def test_usage_errors_are_exit_2_with_one_line(migrate):
    result = migrate("move", "counter", "--from", "boardA")          # no --to
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: USAGE: Missing option '--to'")
    result = migrate("move", "counter", "--to", "boardB", "--mode", "teleport", "-o", "json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["reason"] == "USAGE"


def test_a_bad_client_configuration_is_a_usage_error(migrate, xdg):
    config = xdg / "bad.toml"
    config.write_text("[client\n")
    result = migrate("--config", str(config), "boards", coordinator=None)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: BAD_CONFIG: ")
