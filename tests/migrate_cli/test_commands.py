"""The commands against a fake coordinator: what each sends, prints, and exits with."""

from __future__ import annotations

import json
import signal

import pytest

from migrate.v1 import resources_pb2 as res

from .conftest import DEADLINE, migrate_process

BOARD_FIELDS = {"name", "agent_address", "health", "health_detail", "protocol_version", "arch",
                "kernel", "ram_total_bytes", "ram_free_bytes", "caps_total", "caps_free", "roms",
                "board_time_us", "baud"}
MOVE_FIELDS = {"id", "component", "source_board", "target_board", "options", "phase",
               "transitions", "progress", "rounds", "stop_rule", "predicted_downtime_ms",
               "downtime_ms", "total_ms", "cancel_requested", "generation", "note"}


def rounds(n: int, final: bool = False) -> list[res.MoveRound]:
    return [res.MoveRound(index=i, final=final and i == n - 1, pages=40 - 10 * i,
                          page_bytes=(40 - 10 * i) * 4096, wire_bytes=1000 * (4 - i),
                          duration_ms=20) for i in range(n)]


def script(final_phase: int, **final) -> list[res.Move]:
    return [
        res.Move(phase=res.MOVE_PHASE_PREFLIGHT),
        res.Move(phase=res.MOVE_PHASE_PRE_COPY, progress=res.MoveProgress(percent=30, round=1),
                 rounds=rounds(1)),
        res.Move(phase=res.MOVE_PHASE_PRE_COPY, progress=res.MoveProgress(percent=20, round=2),
                 rounds=rounds(2)),
        res.Move(phase=final_phase, progress=res.MoveProgress(percent=100), rounds=rounds(3, True),
                 **final),
    ]


def test_boards_json_has_every_field(migrate, fake_coordinator):
    fake, _ = fake_coordinator
    fake.boards = [res.Board(name="boardA", agent_address="127.0.0.1:1",
                             health=res.BOARD_HEALTH_SERVING, ram_free_bytes=1 << 28, baud=921600)]
    result = migrate("boards", "-o", "json")
    assert result.exit_code == 0, result.output
    [board] = json.loads(result.stdout)["boards"]
    assert set(board) == BOARD_FIELDS
    assert board["health"] == "BOARD_HEALTH_SERVING"
    assert board["ram_free_bytes"] == 1 << 28          # a number, not a string

    text = migrate("boards").stdout.splitlines()
    assert text[0].split()[:3] == ["NAME", "HEALTH", "AGENT"]
    assert text[1].split()[:3] == ["boardA", "serving", "127.0.0.1:1"]


def test_ps_filters_and_names_unreachable_boards(migrate, fake_coordinator):
    fake, _ = fake_coordinator
    fake.components = [res.Component(name="counter", board="boardA", state="running"),
                       res.Component(name="kv", board="boardB", state="running")]
    fake.unreachable = ["boardC"]
    result = migrate("ps", "--board", "boardB", "-o", "json")
    data = json.loads(result.stdout)
    assert [c["name"] for c in data["components"]] == ["kv"]
    assert data["unreachable_boards"] == ["boardC"]
    result = migrate("ps")
    assert "unreachable: boardC" in result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["NAME", "counter", "kv"]


def test_start_sends_quotas_and_the_config_rom(migrate, fake_coordinator, tmp_path):
    fake, _ = fake_coordinator
    config = tmp_path / "counter.config"
    config.write_text("<config step_ms='10'/>")
    result = migrate("start", "counter", "--on", "boardA", "--ram", "16M", "--caps", "100",
                     "--config", config, "-o", "json")
    assert result.exit_code == 0, result.output
    [request] = fake.calls("StartComponent")
    assert (request.name, request.board, request.ram_quota_bytes, request.cap_quota,
            request.config) == ("counter", "boardA", 16 << 20, 100, "<config step_ms='10'/>")
    assert json.loads(result.stdout)["component"]["board"] == "boardA"


def test_logs_json_and_tail(migrate, fake_coordinator):
    fake, _ = fake_coordinator
    fake.log_lines = [res.LogLine(index=i, text=f"count {i + 1}", board="boardB")
                      for i in range(5)]
    result = migrate("logs", "counter", "--tail", "2")
    assert result.stdout.splitlines() == ["count 4", "count 5"]
    data = json.loads(migrate("logs", "counter", "-o", "json").stdout)
    assert data["component"] == "counter"
    assert [x["text"] for x in data["lines"]] == [f"count {i}" for i in range(1, 6)]
    assert set(data["lines"][0]) == {"index", "time_us", "text", "board"}


def test_move_sends_its_options_and_reports_the_move(migrate, fake_coordinator):
    fake, _ = fake_coordinator
    fake.watch_script = script(res.MOVE_PHASE_DONE, downtime_ms=42, total_ms=900,
                               predicted_downtime_ms=40, stop_rule="delta below budget")
    result = migrate("move", "counter", "--from", "boardA", "--to", "boardB", "--mode",
                     "stop-copy", "--max-downtime", "250", "--on-overshoot", "accept",
                     "--link-grace", "1.5", "--max-rounds", "4", "-o", "json")
    assert result.exit_code == 0, result.output
    [request] = fake.calls("CreateMove")
    assert (request.component, request.source_board, request.target_board) == \
        ("counter", "boardA", "boardB")
    o = request.options
    assert (o.mode, o.max_downtime_ms, o.on_overshoot, o.link_grace_ms, o.max_rounds) == \
        (res.MOVE_MODE_STOP_COPY, 250, res.OVERSHOOT_POLICY_ACCEPT, 1500, 4)
    move = json.loads(result.stdout)["move"]
    assert MOVE_FIELDS <= set(move)
    assert move["phase"] == "MOVE_PHASE_DONE" and move["downtime_ms"] == 42
    assert [r["pages"] for r in move["rounds"]] == [40, 30, 20]
    # Not a terminal: progress comes as lines on stderr, one per phase and round.
    assert "move m1: pre-copy" in result.stderr.splitlines()
    assert result.stderr.count("round 0:") == 1


def test_move_text_report(migrate, fake_coordinator):
    fake, _ = fake_coordinator
    fake.watch_script = script(res.MOVE_PHASE_DONE, downtime_ms=42, total_ms=900,
                               predicted_downtime_ms=40, stop_rule="delta below budget",
                               note="all good")
    result = migrate("move", "counter", "--to", "boardB")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "move m1: counter boardA -> boardB (live): done"
    assert lines[1].split() == ["ROUND", "PAGES", "PAGE", "BYTES", "WIRE", "BYTES", "DURATION"]
    assert [line.split()[0] for line in lines[2:5]] == ["0", "1", "final"]
    assert "total 900 ms, downtime 42 ms (predicted 40 ms)" in lines
    assert "stop rule: delta below budget" in lines and "note: all good" in lines


def test_a_rolled_back_move_exits_1_after_its_report(migrate, fake_coordinator):
    fake, _ = fake_coordinator
    fake.watch_script = script(res.MOVE_PHASE_ROLLED_BACK, error=res.MoveError(
        reason="LINK_LOST", message="boardB stopped answering"))
    result = migrate("move", "counter", "--to", "boardB", "-o", "json")
    assert result.exit_code == 1
    move = json.loads(result.stdout)["move"]           # the move, not a second error object
    assert move["phase"] == "MOVE_PHASE_ROLLED_BACK"
    assert move["error"] == {"reason": "LINK_LOST", "message": "boardB stopped answering"}
    assert result.stderr.splitlines()[-1] == \
        "Error: LINK_LOST: move m1 rolled-back: boardB stopped answering"


def test_a_second_move_is_refused(migrate, fake_coordinator):
    from migrate import errors
    fake, _ = fake_coordinator
    fake.fail["CreateMove"] = errors.AlreadyMoving("counter is moving (move m7)")
    result = migrate("move", "counter", "--to", "boardB")
    assert result.exit_code == 4
    assert result.stderr == "Error: ALREADY_MOVING: counter is moving (move m7)\n"


def test_detach_prints_the_id_and_does_not_watch(migrate, fake_coordinator):
    fake, _ = fake_coordinator
    result = migrate("move", "counter", "--to", "boardB", "--detach")
    assert result.exit_code == 0
    assert result.stdout == "m1\n"
    assert not fake.calls("WatchMove")


@pytest.mark.parametrize("feasible,code", [(True, 0), (False, 4)])
def test_dry_run_plans_and_never_moves(migrate, fake_coordinator, feasible, code):
    fake, _ = fake_coordinator
    fake.plan = res.MovePlan(component="counter", source_board="boardA", target_board="boardB",
                             feasible=feasible, predicted_downtime_ms=35, checks=[
                                 res.PreflightCheck(name="health", passed=True),
                                 res.PreflightCheck(name="rom", passed=feasible,
                                                    detail="digest differs")])
    result = migrate("move", "counter", "--to", "boardB", "--dry-run")
    assert result.exit_code == code, result.output
    assert not fake.calls("CreateMove")
    assert "predicted downtime 35 ms" in result.stdout
    assert ("FAIL rom: digest differs" in result.stdout) is not feasible
    if not feasible:
        assert result.stderr == "Error: PREFLIGHT_FAILED: counter cannot move to boardB: rom\n"
        as_json = migrate("move", "counter", "--to", "boardB", "--dry-run", "-o", "json")
        assert json.loads(as_json.stdout)["plan"]["feasible"] is False


def test_moves_pages_up_to_the_limit(migrate, fake_coordinator):
    fake, _ = fake_coordinator
    for _ in range(5):
        migrate("move", "counter", "--to", "boardB", "--detach")
    result = migrate("moves", "--limit", "3", "-o", "json")
    assert [m["id"] for m in json.loads(result.stdout)["moves"]] == ["m1", "m2", "m3"]
    assert json.loads(migrate("moves", "show", "m4", "-o", "json").stdout)["move"]["id"] == "m4"
    assert migrate("moves", "show", "m9").exit_code == 3
    assert [line.split()[0] for line in migrate("moves").stdout.splitlines()] == \
        ["ID", "m1", "m2", "m3", "m4", "m5"]


def test_cancel(migrate, fake_coordinator):
    fake, _ = fake_coordinator
    migrate("move", "counter", "--to", "boardB", "--detach")
    result = migrate("cancel", "m1")
    assert result.stdout == "move m1: cancel requested (cancelled)\n"


def test_checkpoint_commands(migrate, fake_coordinator):
    fake, _ = fake_coordinator
    taken = json.loads(migrate("checkpoint", "counter", "--full", "-o", "json").stdout)
    assert fake.calls("CreateCheckpoint")[0].full
    assert taken["checkpoint"]["id"] == "c1"
    assert json.loads(migrate("checkpoints", "rm", "c1", "-o", "json").stdout) == \
        {"deleted": 2, "freed_bytes": 8192}
    restored = migrate("restore", "c1", "--to", "boardB", "--name", "counter2")
    assert restored.exit_code == 0
    assert fake.calls("RestoreCheckpoint")[0].name == "counter2"


def test_a_failed_verification_exits_1(migrate, fake_coordinator):
    fake, _ = fake_coordinator
    assert migrate("checkpoints", "verify", "c1").stdout.startswith("checkpoint c1: ok")
    fake.verify.ok, fake.verify.detail = False, "page 1a2b: digest mismatch"
    result = migrate("checkpoints", "verify", "c1", "-o", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["ok"] is False
    assert result.stderr == ("Error: VERIFY_FAILED: checkpoint c1 failed verification: "
                             "page 1a2b: digest mismatch\n")


def test_ctrl_c_cancels_the_move_and_waits_for_the_rollback(fake_coordinator, process_env):
    fake, address = fake_coordinator
    fake.watch_script = [res.Move(phase=res.MOVE_PHASE_PRE_COPY,
                                  progress=res.MoveProgress(percent=10))]
    fake.hold_until_cancel = True
    process = migrate_process("--coordinator", address, "move", "counter", "--to", "boardB",
                              "-o", "json", env=process_env)
    try:
        assert process.stderr is not None
        for line in process.stderr:            # the line view: stderr is a pipe
            if line.strip() == "move m1: pre-copy":
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=DEADLINE)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert len(fake.calls("CancelMove")) == 1
    assert json.loads(out)["move"]["phase"] == "MOVE_PHASE_CANCELLED"
    assert "Ctrl-C: cancelling move m1" in err
    assert err.splitlines()[-1] == "Error: INTERRUPTED: move m1 cancelled: counter runs on boardA"
