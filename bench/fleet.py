"""Concurrent moves through one coordinator, against a single move alone.

A lab of --boards board servers (paced at --baud), an agent per board and one
coordinator, as processes (bench/_fleet.py). A counter is started on each of
--moves boards and every one is moved to another board at the same time: one
thread per move, each doing CreateMove and WatchMove on a channel of its own.
The baseline, in the same run: the same component moved alone between the same
kind of boards, --solo times (median).

Printed: each move (rounds, downtime, total time), the slowest concurrent
move's total time / the single move's, and the coordinator process's CPU time
(utime + stime from /proc/PID/stat) per move, concurrent and alone, beside
what the idle coordinator spends in the same wall time (it asks every agent
for its board once a second), plus the lab's resident memory.

Moves are live with the default 300 ms budget and accept an overshoot: a
counter's rounds are a few pages, so the goodput the engine measures on them
is mostly round-trip latency, and on a loaded machine its predicted downtime
exceeds the budget and the move rolls back (``--on-overshoot abort`` shows it).

Every move must end DONE and every counter must count on on its target
(exit 1 otherwise). Every lab process is stopped at the end, also on Ctrl-C,
SIGTERM or failure.

    python bench/fleet.py [--quick] [--boards N] [--moves M] [--baud B] [--solo R]
                          [--on-overshoot accept|abort]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))          # bench/_fleet.py
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # the project

from _fleet import LabRun, cpu_seconds, finish, phase_name, rss_bytes, wait_for  # noqa: E402

from migrate.client import CoordinatorClient  # noqa: E402
from migrate.v1 import resources_pb2 as rpb  # noqa: E402

MIB = 1 << 20
ROM = "counter"
COUNT = re.compile(r"^count (\d+) ")
#: A hung move ends the run instead of hanging it.
MOVE_DEADLINE = 600.0
#: The counter logs every 200 ms; this many new counts on the target make it "counting on".
COUNTS_AFTER = 3


@dataclass
class Outcome:
    component: str
    source: str
    target: str
    counted_before: int = 0
    move: rpb.Move | None = None
    wall_s: float = 0.0
    error: str = ""
    intact: bool = False
    detail: str = ""
    cpu_s: float = 0.0          # the coordinator's, during this move (single moves only)

    @property
    def done(self) -> bool:
        return self.move is not None and self.move.phase == rpb.MOVE_PHASE_DONE


@dataclass
class Cpu:
    """The coordinator's CPU seconds over a stretch of wall time."""
    cpu_s: float = 0.0
    wall_s: float = 0.0


def counts(client: CoordinatorClient, name: str, board: str = "") -> list[int]:
    return [int(m[1]) for line in client.stream_logs(name)
            if (not board or line.board == board) and (m := COUNT.match(line.text))]


def wait_counting(client: CoordinatorClient, name: str, board: str, after: int,
                  timeout: float = 60.0) -> tuple[bool, str]:
    """Whether ``name`` runs on ``board`` and logs COUNTS_AFTER counts past ``after``, no error."""
    def look() -> tuple[bool, str] | None:
        lines = [line.text for line in client.stream_logs(name) if line.board == board]
        bad = [text for text in lines if "Error" in text or "[core]" in text]
        if bad:
            return False, f"error line on {board}: {bad[0]!r}"
        new = [int(m[1]) for text in lines if (m := COUNT.match(text)) and int(m[1]) > after]
        if len(new) >= COUNTS_AFTER:
            return True, f"counts {new[0]}..{new[-1]} on {board}"
        return None
    try:
        return wait_for(look, timeout, f"{name} counting on {board}", interval=0.5)
    except TimeoutError:
        return False, f"fewer than {COUNTS_AFTER} new counts on {board} within {timeout:g} s"


def move_one(client: CoordinatorClient, outcome: Outcome, options: rpb.MoveOptions,
             start: threading.Barrier | None = None) -> None:
    """CreateMove + WatchMove; the outcome records what happened, never raises."""
    try:
        if start is not None:
            start.wait(timeout=120)
        began = time.monotonic()
        created = client.create_move(outcome.component, outcome.target,
                                     source_board=outcome.source, options=options)
        outcome.move = finish(client, created.id, timeout=MOVE_DEADLINE)
        outcome.wall_s = time.monotonic() - began
        if not outcome.done:
            e = outcome.move.error
            outcome.error = f"{phase_name(outcome.move.phase)}: {e.reason} {e.message}".strip()
    except Exception as error:  # noqa: BLE001 - reported with the others
        outcome.error = f"{type(error).__name__}: {error}"


def solo_moves(run: LabRun, source: str, target: str, repeats: int, options: rpb.MoveOptions,
               say) -> list[Outcome]:
    """The baseline: one counter moved alone, there and back."""
    client = run.client
    name = "solo"
    client.start_component(name, source, rom=ROM)
    wait_for(lambda: counts(client, name), 60, f"{name} counting")
    outcomes = []
    here, there = source, target
    for i in range(repeats):
        outcome = Outcome(name, here, there, counted_before=max(counts(client, name), default=0))
        cpu_before = cpu_seconds(run.coordinator_pid)
        move_one(client, outcome, options)
        outcome.cpu_s = cpu_seconds(run.coordinator_pid) - cpu_before
        if outcome.done:
            outcome.intact, outcome.detail = wait_counting(client, name, there,
                                                           outcome.counted_before)
        say(f"alone {i + 1}/{repeats}: {name} {here} -> {there}: "
            f"{outcome.error or f'{outcome.move.total_ms} ms, {outcome.detail}'}")
        outcomes.append(outcome)
        if not outcome.done:
            break
        here, there = there, here
    client.kill_component(name)
    return outcomes


def idle_cpu(pid: int, seconds: float) -> Cpu:
    before, start = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return Cpu(cpu_seconds(pid) - before, time.monotonic() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 boards, 3 moves, 1 solo move")
    parser.add_argument("--boards", type=int, default=None, help="lab size [default: 50]")
    parser.add_argument("--moves", type=int, default=None,
                        help="moves at once [default: 10; --quick 3]")
    parser.add_argument("--baud", type=int, default=921600, help="every board's line rate")
    parser.add_argument("--solo", type=int, default=None,
                        help="single moves for the baseline (median) [default: 3; --quick 1]")
    parser.add_argument("--on-overshoot", choices=("accept", "abort"), default="accept",
                        help="when a move's predicted downtime exceeds the 300 ms default "
                        "budget [default: accept]")
    args = parser.parse_args(argv)
    boards = args.boards or (10 if args.quick else 50)
    moves = args.moves or (3 if args.quick else 10)
    solo = args.solo or (1 if args.quick else 3)
    if boards < 2 or not 1 <= moves <= boards:
        parser.error("needs at least 2 boards and 1 <= moves <= boards")
    began = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - began:6.1f} s] {message}", flush=True)

    # Live moves with the default budget; accepting an overshoot keeps a loaded
    # machine (a counter's tiny rounds are latency, not bandwidth) from
    # turning the measurement into rollbacks.
    options = rpb.MoveOptions(on_overshoot=rpb.OVERSHOOT_POLICY_ACCEPT
                              if args.on_overshoot == "accept" else rpb.OVERSHOOT_POLICY_ABORT)
    # Targets half the lab away: with boards >= 2 * moves no board both sends and receives.
    offset = max(1, boards // 2)
    ok = False
    with LabRun(boards, args.baud, ready_deadline=max(120.0, 4.0 * boards), say=say) as run:
        names = run.boards
        pid = run.coordinator_pid
        memory = {role: rss_bytes(run.pids(role)) for role in ("board", "agent", "coordinator")}
        say(f"lab resident memory: {boards} boards {memory['board'] / MIB:.0f} MiB, {boards} "
            f"agents {memory['agent'] / MIB:.0f} MiB, coordinator "
            f"{memory['coordinator'] / MIB:.0f} MiB")

        alone = solo_moves(run, names[0], names[offset % boards], solo, options, say)
        alone_ok = all(o.done and o.intact for o in alone) and len(alone) == solo

        fleet = [Outcome(f"counter{i}", names[i], names[(i + offset) % boards])
                 for i in range(moves)]
        for o in fleet:
            run.client.start_component(o.component, o.source, rom=ROM)
        for o in fleet:
            wait_for(lambda o=o: counts(run.client, o.component), 60, f"{o.component} counting")
        idle = idle_cpu(pid, 3.0 if args.quick else 10.0)
        say(f"idle coordinator: {idle.cpu_s * 1000:.0f} ms CPU in {idle.wall_s:.1f} s "
            f"({moves} counters running on {boards} boards)")
        for o in fleet:
            o.counted_before = max(counts(run.client, o.component), default=0)

        clients = [run.new_client() for _ in fleet]
        barrier = threading.Barrier(len(fleet))
        threads = [threading.Thread(target=move_one, args=(c, o, options, barrier), daemon=True,
                                    name=f"move {o.component}") for c, o in zip(clients, fleet)]
        cpu_before, start = cpu_seconds(pid), time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        batch = Cpu(cpu_seconds(pid) - cpu_before, time.monotonic() - start)
        say(f"{moves} moves at once ended after {batch.wall_s:.1f} s")
        for o in fleet:
            if o.done:
                o.intact, o.detail = wait_counting(run.client, o.component, o.target,
                                                   o.counted_before)
        memory_after = rss_bytes(run.pids())
        ok = alone_ok and all(o.done and o.intact for o in fleet)

    print()
    print(f"fleet: {boards} board servers at {args.baud} baud, an agent each, one coordinator "
          f"(processes on loopback); {moves} counters moved at once, one thread each "
          f"(CreateMove + WatchMove); live moves, max_downtime 300 ms, on_overshoot "
          f"{args.on_overshoot}")
    print()
    header = (f"{'move':<12} {'from':<8} {'to':<8} {'result':<11} {'rounds':>6} {'wire KiB':>8} "
              f"{'predicted ms':>12} {'downtime ms':>11} {'total ms':>8} {'client s':>8}  "
              "after the move")
    print(header)
    print("-" * len(header))
    for label, o in [*((f"alone {i + 1}", o) for i, o in enumerate(alone)),
                     *((o.component, o) for o in fleet)]:
        m = o.move
        if m is None:
            print(f"{label:<12} {o.source:<8} {o.target:<8} {'error':<11} {o.error}")
            continue
        wire = sum(r.wire_bytes for r in m.rounds) / 1024
        print(f"{label:<12} {o.source:<8} {o.target:<8} {phase_name(m.phase):<11} "
              f"{len(m.rounds):>6} {wire:>8.1f} {m.predicted_downtime_ms:>12} "
              f"{m.downtime_ms:>11} {m.total_ms:>8} "
              f"{o.wall_s:>8.2f}  {o.error or o.detail}")

    print()
    done_alone = [o for o in alone if o.done]
    done_fleet = [o for o in fleet if o.done]
    if done_alone and done_fleet:
        single = statistics.median(o.move.total_ms for o in done_alone)
        slowest = max(done_fleet, key=lambda o: o.move.total_ms)
        mean = statistics.mean(o.move.total_ms for o in done_fleet)
        print(f"total time              slowest of {moves} at once {slowest.move.total_ms} ms "
              f"({slowest.component}) / single move {single:.0f} ms (median of "
              f"{len(done_alone)}) = {slowest.move.total_ms / single:.2f}x; mean "
              f"{mean:.0f} ms = {mean / single:.2f}x")
        single_down = statistics.median(o.move.downtime_ms for o in done_alone)
        worst_down = max(o.move.downtime_ms for o in done_fleet)
        print(f"downtime                worst at once {worst_down} ms / single {single_down:.0f} ms"
              f" = {worst_down / max(single_down, 1):.2f}x")
    idle_rate = idle.cpu_s / idle.wall_s
    solo_cpu = statistics.median(o.cpu_s for o in alone)
    solo_wall = statistics.median(o.wall_s for o in alone)
    print(f"coordinator CPU         {batch.cpu_s / moves * 1000:.0f} ms per move at once "
          f"({batch.cpu_s * 1000:.0f} ms for {moves} in {batch.wall_s:.1f} s); alone "
          f"{solo_cpu * 1000:.0f} ms per move (median); /proc counts in "
          f"{1000 / os.sysconf('SC_CLK_TCK'):.0f} ms ticks")
    busy = (batch.cpu_s - idle_rate * batch.wall_s) / moves
    print(f"  less idle polling     {busy * 1000:.0f} ms per move at once; alone "
          f"{(solo_cpu - idle_rate * solo_wall) * 1000:.0f} ms "
          f"(idle: {idle_rate * 1000:.0f} ms CPU per s with {boards} boards)")
    print(f"memory                  lab resident {memory_after / MIB:.0f} MiB after the moves "
          f"({boards} boards {memory['board'] / MIB:.0f} MiB, {boards} agents "
          f"{memory['agent'] / MIB:.0f} MiB, coordinator {memory['coordinator'] / MIB:.0f} MiB "
          "at start)")
    print(f"machine                 Python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs; total {time.monotonic() - began:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
