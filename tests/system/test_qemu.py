"""Moves between two boards that are QEMU virtual machines, through their agents
and the coordinator: exactly as on hardware, an agent sees only a serial line.

Each test starts its components under names of its own, so that no test depends
on what another left behind.

Workloads stay small (counter, ticker, a 512 KiB kvstore where a move must last
a few seconds): code under Unicorn runs 15-20x slower inside a TCG guest.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time

import pytest

from migrate.v1 import resources_pb2 as rpb

from .conftest import MOVE_DEADLINE, counts, wait_for

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

TERMINAL = {rpb.MOVE_PHASE_DONE, rpb.MOVE_PHASE_FAILED, rpb.MOVE_PHASE_ROLLED_BACK,
            rpb.MOVE_PHASE_CANCELLED}
TICK = re.compile(r"^tick (\d+)$")
#: The guests are slow (TCG, 73 KiB/s UARTs): a downtime budget a VM can meet.
LIVE = rpb.MoveOptions(max_downtime_ms=5000)
STEP = re.compile(r"^step (\d+) size_kib \d+ digest [0-9a-f]+$")
#: Incompressible, so that its first round takes seconds on a VM's line: a move
#: that is still under way when a test interferes.
#: Two hot pages and rare full checks keep the guest's CPU free and the deltas small.
SMALL_KVSTORE = "table_kib=512\nfill=random\nhot_pages=2\nperiod_ms=200\ncheck_every=25\n"


class Follower:
    """``migrate logs -f`` in a thread on its own channel: every line, with the
    board it came from. ``cancel`` closes the channel, which ends the stream."""

    def __init__(self, fleet, name: str):
        self.lines: list[rpb.LogLine] = []
        self._client = fleet.client(timeout=30.0)
        self._stream = self._client.stream_logs(name, follow=True)
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            for line in self._stream:
                self.lines.append(line)
        except Exception:  # noqa: BLE001 - cancelled when the fleet's clients close
            pass

    def cancel(self) -> None:
        self._client.close()

    def on(self, board: str, pattern: re.Pattern[str] | None = None) -> list[int]:
        texts = [line.text for line in list(self.lines) if line.board == board]
        if pattern is None:
            return counts(texts)
        return [int(m[1]) for t in texts if (m := pattern.match(t))]


def errors_in(lines) -> list[str]:
    return [line.text for line in lines if line.text.startswith(("Error", "[core]"))]


def finish(client, move_id: str) -> rpb.Move:
    deadline = time.monotonic() + MOVE_DEADLINE
    last = None
    for last in client.watch_move(move_id):
        assert time.monotonic() < deadline, "move did not end in time"
    assert last is not None and last.phase in TERMINAL, last
    return last


def where(client, name: str) -> list[tuple[str, str]]:
    return [(c.board, c.state) for c in client.list_components().components if c.name == name]


def test_counter_moves_to_the_other_vm_and_back(qemu_fleet, record_property):
    client = qemu_fleet.client()
    client.start_component("counter", "boardA")
    follower = Follower(qemu_fleet, "counter")
    try:
        wait_for(lambda: len(follower.on("boardA")) >= 3, 60, "counter counting on boardA")
        # As a person types it: the CLI, against this fleet's coordinator.
        typed = subprocess.run(
            [sys.executable, "-m", "migrate.cli", "--coordinator",
             qemu_fleet.coordinator.address, "-o", "json", "move", "counter",
             "--from", "boardA", "--to", "boardB", "--max-downtime", "5000"],
            capture_output=True, text=True, timeout=MOVE_DEADLINE, env=qemu_fleet.cli_env())
        assert typed.returncode == 0, typed.stdout + typed.stderr
        there = client.get_move(json.loads(typed.stdout)["move"]["id"])
        assert there.phase == rpb.MOVE_PHASE_DONE, there.error
        assert where(client, "counter") == [("boardB", "running")]
        wait_for(lambda: len(follower.on("boardB")) >= 3, 60, "counter counting on boardB")
        on_a, on_b = follower.on("boardA"), follower.on("boardB")
        assert on_a == list(range(1, len(on_a) + 1)), on_a
        assert on_b[:3] == [on_a[-1] + 1, on_a[-1] + 2, on_a[-1] + 3], (on_a[-3:], on_b[:3])

        seen_on_b = len(follower.on("boardB"))
        back = finish(client, client.create_move("counter", "boardA", options=LIVE).id)
        assert back.phase == rpb.MOVE_PHASE_DONE, back.error
        assert where(client, "counter") == [("boardA", "running")]
        assert back.generation > there.generation
        wait_for(lambda: len(follower.on("boardA")) >= len(on_a) + 3, 60,
                 "counter counting on boardA again")
        on_b = follower.on("boardB")
        again = follower.on("boardA")[len(on_a):]
        assert len(on_b) >= seen_on_b
        assert on_b == list(range(on_b[0], on_b[0] + len(on_b))), on_b
        assert again[:3] == [on_b[-1] + 1, on_b[-1] + 2, on_b[-1] + 3], (on_b[-3:], again[:3])
        record_property("move_ms", [there.total_ms, back.total_ms])
        record_property("downtime_ms", [there.downtime_ms, back.downtime_ms])
        print(f"move A->B {there.total_ms} ms (downtime {there.downtime_ms} ms), "
              f"B->A {back.total_ms} ms (downtime {back.downtime_ms} ms); "
              f"boots {[round(s, 1) for s in qemu_fleet.boot_seconds]} s")
    finally:
        follower.cancel()


def test_ticker_moves_live_and_keeps_its_badges_and_signals(qemu_fleet):
    client = qemu_fleet.client()
    client.start_component("ticker", "boardA")
    follower = Follower(qemu_fleet, "ticker")
    try:
        wait_for(lambda: len(follower.on("boardA", TICK)) >= 3, 60, "ticker ticking on boardA")
        end = finish(client, client.create_move("ticker", "boardB", options=LIVE).id)
        assert end.phase == rpb.MOVE_PHASE_DONE, end.error
        assert where(client, "ticker") == [("boardB", "running")]
        wait_for(lambda: len(follower.on("boardB", TICK)) >= 3, 60, "ticker ticking on boardB")
        on_a, on_b = follower.on("boardA", TICK), follower.on("boardB", TICK)
        stride = on_a[1] - on_a[0]
        assert stride > 0 and on_a == list(range(on_a[0], on_a[0] + stride * len(on_a), stride))
        assert on_b[:3] == [on_a[-1] + stride * i for i in range(1, 4)], (on_a[-3:], on_b[:3])
        # Its own check of what a restore may break: the badges it holds, signals delivered.
        wait_for(lambda: any(l.board == "boardB" and l.text.startswith("badge check ok")
                             for l in follower.lines), 90, "ticker's badge check on boardB")
        assert not errors_in(follower.lines), errors_in(follower.lines)
    finally:
        follower.cancel()


def test_target_vm_killed_mid_move_keeps_the_component_on_the_source(qemu_fleet):
    client = qemu_fleet.client()
    client.start_component("store-k", "boardA", rom="kvstore", config=SMALL_KVSTORE)
    follower = Follower(qemu_fleet, "store-k")
    try:
        wait_for(lambda: len(follower.on("boardA", STEP)) >= 2, 90, "kvstore stepping on boardA")
        move = client.create_move("store-k", "boardB", options=rpb.MoveOptions(
            max_downtime_ms=5000, link_grace_ms=1000))
        wait_for(lambda: client.get_move(move.id).progress.bytes_sent > 0, 60,
                 "pre-copy under way")
        qemu_fleet.vms["boardB"].kill()
        assert not qemu_fleet.vms["boardB"].alive()
        end = finish(client, move.id)
        assert end.phase == rpb.MOVE_PHASE_ROLLED_BACK, end
        assert end.error.reason == "UNAVAILABLE", end.error
        assert "boardB" in end.error.message, end.error
        assert where(client, "store-k") == [("boardA", "running")]
        seen = len(follower.on("boardA", STEP))
        wait_for(lambda: len(follower.on("boardA", STEP)) >= seen + 2, 60,
                 "kvstore still stepping on boardA")
        steps = follower.on("boardA", STEP)
        assert steps == list(range(steps[0], steps[0] + len(steps))), steps
        assert not follower.on("boardB", STEP)
        assert not errors_in(follower.lines), errors_in(follower.lines)
    finally:
        follower.cancel()


def test_vm_paused_past_the_link_timeout_rolls_back_and_recovers(qemu_fleet):
    client = qemu_fleet.client()
    client.start_component("store-p", "boardA", rom="kvstore", config=SMALL_KVSTORE)
    wait_for(lambda: where(client, "store-p") == [("boardA", "running")], 30, "store-p running")
    move = client.create_move("store-p", "boardB", options=rpb.MoveOptions(
        max_downtime_ms=5000, link_grace_ms=1000))
    wait_for(lambda: client.get_move(move.id).progress.bytes_sent > 0, 60, "pre-copy under way")
    target = qemu_fleet.vms["boardB"]
    target.pause()
    try:
        assert target.status() == "paused"
        # The agent's link gives up after its dead_after (10 s) of silence; the move
        # waits out its grace and rolls back while the machine is still frozen.
        end = finish(client, move.id)
        assert end.phase == rpb.MOVE_PHASE_ROLLED_BACK, end
        assert end.error.reason == "UNAVAILABLE", end.error
        assert where(client, "store-p") == [("boardA", "running")]
        wait_for(lambda: qemu_fleet.health("boardB") != rpb.BOARD_HEALTH_SERVING, 30,
                 "boardB reported down")
        assert target.status() == "paused"
    finally:
        target.resume()
    assert target.status() == "running"
    # Nobody restarts the agent: it reconnects to the same serial line by itself.
    agent = qemu_fleet.agents["boardB"]
    qemu_fleet.wait_serving("boardB", timeout=90)
    assert agent.alive() and qemu_fleet.agents["boardB"] is agent
    # The board is usable: the same move goes through now.
    again = finish(client, client.create_move("store-p", "boardB", options=rpb.MoveOptions(
        max_downtime_ms=5000, on_overshoot=rpb.OVERSHOOT_POLICY_ACCEPT)).id)
    assert again.phase == rpb.MOVE_PHASE_DONE, again.error
    assert where(client, "store-p") == [("boardB", "running")]
    print(f"paused-board rollback {end.total_ms} ms; move after resume {again.total_ms} ms "
          f"({len(again.rounds)} rounds)")


def test_failover_restores_the_stored_checkpoint_after_the_vm_died(qemu_fleet):
    client = qemu_fleet.client()
    client.start_component("counter-f", "boardA", rom="counter")
    follower = Follower(qemu_fleet, "counter-f")
    try:
        wait_for(lambda: len(follower.on("boardA")) >= 2, 60, "counter counting on boardA")
        stored = client.create_checkpoint("counter-f")
        assert stored.pages > 0
        assert client.verify_checkpoint(stored.id).ok
        wait_for(lambda: len(follower.on("boardA")) >= 4, 60, "more counts")
        last_seen = max(follower.on("boardA"))
        qemu_fleet.vms["boardA"].kill()
        wait_for(lambda: qemu_fleet.health("boardA") != rpb.BOARD_HEALTH_SERVING, 60,
                 "boardA down")
        restored = client.restore_checkpoint(stored.id, "boardB")
        assert restored.component.board == "boardB"
        assert where(client, "counter-f") == [("boardB", "running")]
    finally:
        follower.cancel()
    after = wait_for(lambda: (c := counts(l.text for l in client.stream_logs("counter-f")))
                     and len(c) >= 3 and c, 60, "counter counting on boardB")
    # It continues from the checkpoint: not from zero, and not beyond what was seen.
    assert 1 < after[0] <= last_seen + 1
    assert after == list(range(after[0], after[0] + len(after)))
    assert "boardA" in client.list_components().unreachable_boards
