"""`migrate` end to end: a lab of real processes (boards, agents, coordinator), driven by
the `migrate` command as a user runs it, in a private XDG state and config home."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from migrate.lab import board_names, process_alive

from .conftest import DEADLINE, MIGRATE, migrate_process

COUNT = re.compile(r"^count (\d+) ")


def run(env: dict[str, str], *args: object, timeout: float = DEADLINE * 3
        ) -> subprocess.CompletedProcess:
    return subprocess.run([*MIGRATE, *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (f"{result.args[-5:]} exited {result.returncode}\n"
                                    f"stdout: {result.stdout}\nstderr: {result.stderr}")
    assert "Traceback" not in result.stderr
    return result


def lab_json(xdg: Path) -> Path:
    return xdg / "state" / "genode-migrate" / "lab" / "lab.json"


def recorded_pids(xdg: Path) -> list[tuple[int, int]]:
    data = json.loads(lab_json(xdg).read_text())
    return [(p["pid"], p["start_time"]) for p in data["processes"]]


@pytest.fixture
def lab_env(process_env, xdg):
    """The environment of a test that runs a lab; the lab is taken down whatever happens."""
    yield process_env
    if lab_json(xdg).exists():
        pids = recorded_pids(xdg)
        run(process_env, "lab", "down", timeout=DEADLINE)
        for pid, start_time in pids:              # a broken `lab down` must not leak processes
            if process_alive(pid, start_time):
                os.killpg(pid, signal.SIGKILL)


def test_board_names():
    names = board_names(30)
    assert names[:3] == ["boardA", "boardB", "boardC"] and names[25] == "boardZ"
    assert names[26:] == ["board27", "board28", "board29", "board30"]


def counts(lines: list[dict], board: str) -> list[int]:
    return [int(m[1]) for x in lines if x["board"] == board and (m := COUNT.match(x["text"]))]


def read_json_lines(process: subprocess.Popen, until, collected: list[dict]) -> None:
    """Reads `logs -f -o json` lines into ``collected`` until ``until(collected)``."""
    assert process.stdout is not None
    for line in process.stdout:
        collected.append(json.loads(line))
        if until(collected):
            return
    raise AssertionError(f"the log follower ended early: {collected}\n{process.stderr.read()}")


@pytest.mark.slow
def test_a_lab_moves_a_counter_that_keeps_counting(lab_env, xdg):
    client_config = xdg / "config" / "genode-migrate" / "client.toml"
    client_config.parent.mkdir(parents=True)
    users = '[client]\ncoordinator = "192.0.2.1:7700"\n'
    client_config.write_text(users)
    up = ok(run(lab_env, "lab", "up", "--boards", "2"))
    assert "coordinator" in up.stdout and lab_json(xdg).exists()

    again = run(lab_env, "lab", "up")
    assert again.returncode == 4
    assert again.stderr.startswith("Error: LAB_RUNNING: a lab runs already")

    status = json.loads(ok(run(lab_env, "lab", "status", "-o", "json")).stdout)["lab"]
    certs = xdg / "config" / "genode-migrate" / "certs"
    assert status["tls"] == {"enabled": True, "dir": str(certs)}     # mutual TLS by default
    assert f'cert = "{certs / "operator-operator.crt"}"' in client_config.read_text()
    as_viewer = run({**lab_env, "MIGRATE_IDENTITY": "viewer/viewer"}, "start", "counter",
                    "--on", "boardA")
    assert as_viewer.returncode == 7
    assert as_viewer.stderr.startswith("Error: PERMISSION_DENIED: spiffe://genode-migrate/"
                                       "viewer/viewer may not call CoordinatorService."
                                       "StartComponent")
    assert re.fullmatch(r"127\.0\.0\.1:\d+", status["coordinator"]["address"])
    assert f'"{status["coordinator"]["address"]}"' in client_config.read_text()
    assert status["coordinator"]["alive"]
    assert [b["name"] for b in status["boards"]] == ["boardA", "boardB"]
    for board in status["boards"]:
        assert re.fullmatch(r"socket://127\.0\.0\.1:\d+", board["url"])
        assert re.fullmatch(r"127\.0\.0\.1:\d+", board["agent_address"])
        assert board["board"]["alive"] and board["agent"]["alive"]
        assert board["health"] == "SERVING"

    ok(run(lab_env, "start", "counter", "--on", "boardA"))
    follower = migrate_process("logs", "counter", "-f", "-o", "json", env=lab_env)
    seen: list[dict] = []
    try:
        read_json_lines(follower, lambda lines: len(counts(lines, "boardA")) >= 3, seen)
        moved = ok(run(lab_env, "move", "counter", "--from", "boardA", "--to", "boardB",
                       "-o", "json"))
        move = json.loads(moved.stdout)["move"]
        assert (move["phase"], move["source_board"], move["target_board"]) == \
            ("MOVE_PHASE_DONE", "boardA", "boardB")
        assert move["rounds"] and move["rounds"][-1]["final"]
        read_json_lines(follower, lambda lines: len(counts(lines, "boardB")) >= 3, seen)
    finally:
        follower.send_signal(signal.SIGINT)
        follower.communicate(timeout=DEADLINE)
    on_a, on_b = counts(seen, "boardA"), counts(seen, "boardB")
    assert on_a == list(range(on_a[0], on_a[0] + len(on_a))), on_a
    assert on_b == list(range(on_a[-1] + 1, on_a[-1] + 1 + len(on_b))), (on_a, on_b)

    logs = json.loads(ok(run(lab_env, "logs", "counter", "-o", "json")).stdout)["lines"]
    assert {x["board"] for x in logs} == {"boardB"}
    after = counts(logs, "boardB")
    assert after[0] == on_a[-1] + 1 and after == list(range(after[0], after[0] + len(after)))
    ps = json.loads(ok(run(lab_env, "ps", "-o", "json")).stdout)["components"]
    assert [(c["name"], c["board"]) for c in ps] == [("counter", "boardB")]

    pids = recorded_pids(xdg)
    assert len(pids) == 5
    down = ok(run(lab_env, "lab", "down"))
    assert down.stdout.splitlines() == [f"{name}: stopped" for name in
                                        ("boardA", "boardB", "agent-boardA", "agent-boardB",
                                         "coordinator")]
    assert not [pid for pid, start_time in pids if process_alive(pid, start_time)]
    assert not lab_json(xdg).exists()
    assert client_config.read_text() == users          # the user's configuration is back
    assert run(lab_env, "lab", "status").returncode == 3


@pytest.mark.slow
def test_a_plaintext_lab_runs_on_loopback_without_certificates(lab_env, xdg):
    ok(run(lab_env, "lab", "up", "--boards", "1", "--plaintext"))
    status = json.loads(ok(run(lab_env, "lab", "status", "-o", "json")).stdout)["lab"]
    assert status["tls"] == {"enabled": False, "dir": None}
    assert status["boards"][0]["health"] == "SERVING"
    assert "plaintext = true" in (xdg / "config" / "genode-migrate" / "client.toml").read_text()
    assert not (xdg / "config" / "genode-migrate" / "certs").exists()
    ok(run(lab_env, "start", "counter", "--on", "boardA"))      # as the local operator
    ok(run(lab_env, "lab", "down"))


def test_a_lab_that_cannot_start_stops_what_it_started(lab_env, xdg, tmp_path):
    lab_env["GENODE_CR_ROM_DIR"] = str(tmp_path / "no-roms")       # boards refuse to start
    result = run(lab_env, "lab", "up", "--boards", "2")
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1].startswith("Error: LAB_FAILED: boardA exited before "
                                                     "it was ready")
    assert "ROM directory" in result.stderr and "does not exist" in result.stderr   # the log tail
    assert not lab_json(xdg).exists()
    assert not (xdg / "config" / "genode-migrate" / "client.toml").exists()
    # boardB was started too (it may be stopped before it says why it cannot run).
    assert (xdg / "state" / "genode-migrate" / "lab" / "boardB.log").exists()
