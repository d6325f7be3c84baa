"""Downtime of a live move against a stop-and-copy move of the same component.

The reference workload: kvstore with an 8 MiB table of incompressible data
(fill=random) that rewrites a hot set of 16 pages, 4 words per page every
20 ms. Two board servers paced at --baud (921600: a stop-and-copy carries the
whole table over the UART in about a minute and a half), an agent per board
and a coordinator, as processes (a lab of its own, bench/_fleet.py).

In one run: PlanMove, then a live move boardA -> boardB; PlanMove, then a
stop-and-copy move (MOVE_MODE_STOP_COPY) back. Printed per mode: downtime,
total time, rounds, wire bytes (the compressed page bytes that crossed each
link: out of the source's UART, then into the target's), the predicted
downtime (PlanMove's before the move, the engine's when it froze the source)
against the actual one, and the stop rule. Then the two baselines of the same
run:

- live downtime / stop-and-copy downtime, beside its goal (<= 0.01) and the
  limit the wire puts on it (the final delta's wire bytes / the whole
  table's: 16 hot pages of 2048 make it about 0.008);
- each downtime divided by the final delta's wire time (its page wire bytes
  at the line rate, measured here as bench/link.py does) and split into that
  wire part and ours (the rest), with ours split again: the manifest the
  final round carries over the UART (its size measured in this process on an
  emulated board: a full one lists a SHA-256 for every page, an incremental
  only the entries that changed since its parent), the
  rest of the final round (freeze, capture, framing, acks, staging) and what
  follows it (commit on the target).

After each move the component must be intact on the target: its log there
shows full-table checks (``check step S digest D``) after the move and no
error line (kvstore logs a table that disagrees with its running digest).

The coordinator's default downtime budget (300 ms) cannot be met at 921600
baud: the 16 hot pages alone take 711 ms on the wire. The live move therefore
accepts the overshoot by default (``--on-overshoot abort`` shows the refusal).

    python bench/migration.py [--quick] [--baud B] [--max-downtime-ms MS]
                              [--on-overshoot accept|abort]

Exits 1 if a move does not end DONE or the component is not intact after it.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))          # bench/_fleet.py
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # the project

from _fleet import LabRun, finish, phase_name, wait_for  # noqa: E402

from genode_cr.emu import Board  # noqa: E402
from genode_cr.link import PacedPort, SocketPort, line_rate  # noqa: E402
from migrate.client import CoordinatorClient  # noqa: E402
from migrate.v1 import resources_pb2 as rpb  # noqa: E402

KIB = 1024
PAGE = 4096
COMPONENT = "kvstore"
HOT_PAGES = 16
WORDS_PER_PAGE = 4
PERIOD_MS = 20
#: One step line a second (kvstore checks the whole table about once a second
#: by itself at this period); logs cross the same UART as the pages.
LOG_EVERY = 50
DOWNTIME_GOAL = 0.01
#: Full-table checks the target must log after a move to count as intact.
CHECKS_AFTER = 2

CHECK = re.compile(r"^check step (\d+) digest ([0-9a-f]{8}) config ([0-9a-f]{8})$")
STEP = re.compile(r"^(?:check )?step (\d+) ")


def kvstore_config(table_kib: int, hot_pages: int, period_ms: int) -> str:
    return (f"table_kib={table_kib}\nfill=random\nhot_pages={hot_pages}\n"
            f"words_per_page={WORDS_PER_PAGE}\nperiod_ms={period_ms}\nlog_every={LOG_EVERY}\n")


# --- the line rate, as bench/link.py measures it -------------------------------------

def measure_line_rate(baud: int, seconds: float) -> float:
    """Bytes per second the boards' pacer lets through writing raw bytes."""
    server = socket.create_server(("127.0.0.1", 0))

    def sink() -> None:
        conn = server.accept()[0]
        with conn:
            while conn.recv(65536):
                pass

    drain = threading.Thread(target=sink, daemon=True)
    drain.start()
    port = PacedPort(SocketPort(socket.create_connection(server.getsockname()[:2])), baud)
    block = os.urandom(1024)
    sent = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        port.write(block)
        sent += len(block)
    elapsed = time.monotonic() - start
    port.close()
    drain.join(timeout=10)
    server.close()
    return sent / elapsed


# --- the manifest every round carries ----------------------------------------------------

def manifest_sizes(config: str) -> tuple[int, int]:
    """Bytes of the manifest of a full and of an incremental checkpoint of the
    workload, taken in this process on an emulated board (no link). Every
    round's CheckpointStart carries one over the source's UART: a full one lists
    a SHA-256 for every page of the component, an incremental one only what
    changed since its parent."""
    board = Board("bench-manifest")
    board.cr.start(COMPONENT, config=config)
    board.run_until(lambda: any(CHECK.match(line) for line in board.log(COMPONENT)),
                    timeout=600)
    full = board.cr.checkpoint(COMPONENT)
    board.run(0.1)
    incremental = board.cr.checkpoint(COMPONENT, since=full)
    return full.manifest.ByteSize(), incremental.manifest.ByteSize()


# --- the component ---------------------------------------------------------------------

def runs_on(client: CoordinatorClient) -> str:
    listing = client.list_components()
    boards = [c.board for c in listing.components if c.name == COMPONENT and c.state == "running"]
    return boards[0] if len(boards) == 1 else ""


def last_step(client: CoordinatorClient) -> int:
    steps = [int(m[1]) for line in client.stream_logs(COMPONENT) if (m := STEP.match(line.text))]
    return max(steps, default=0)


def check_intact(client: CoordinatorClient, board: str, after_step: int,
                 timeout: float) -> tuple[bool, str]:
    """Whether the component runs on ``board`` and has logged CHECKS_AFTER
    full-table checks past ``after_step`` (the last step seen before the move)
    and no error line. A board keeps the log of a copy killed there earlier,
    so only checks past ``after_step`` count."""
    def look() -> tuple[bool, str] | None:
        lines = [line.text for line in client.stream_logs(COMPONENT) if line.board == board]
        bad = [text for text in lines if "Error" in text or "[core]" in text]
        if bad:
            return False, f"error line on {board}: {bad[0]!r}"
        checks = [int(m[1]) for text in lines
                  if (m := CHECK.match(text)) and int(m[1]) > after_step]
        if len(checks) >= CHECKS_AFTER:
            return True, (f"{len(checks)} checks on {board} after the move "
                          f"(steps {checks[0]}..{checks[-1]}), no error line")
        return None

    where = runs_on(client)
    if where != board:
        return False, f"runs on {where or 'no single board'}, not on {board}"
    try:
        return wait_for(look, timeout, "full-table checks on the target", interval=0.5)
    except TimeoutError:
        return False, f"fewer than {CHECKS_AFTER} checks on {board} within {timeout:g} s"


# --- the moves -------------------------------------------------------------------------

@dataclass
class Result:
    mode: str
    plan: rpb.MovePlan
    move: rpb.Move
    intact: bool
    detail: str

    @property
    def done(self) -> bool:
        return self.move.phase == rpb.MOVE_PHASE_DONE

    @property
    def final(self) -> rpb.MoveRound | None:
        return next((r for r in self.move.rounds if r.final), None)

    @property
    def wire_bytes(self) -> int:
        return sum(r.wire_bytes for r in self.move.rounds)

    @property
    def page_bytes(self) -> int:
        return sum(r.page_bytes for r in self.move.rounds)


def move(client: CoordinatorClient, mode: str, options: rpb.MoveOptions,
         deadline: float, say) -> Result:
    source = runs_on(client)
    target = "boardB" if source == "boardA" else "boardA"
    plan = client.plan_move(COMPONENT, target, options=options)
    say(f"{mode}: {source} -> {target}, PlanMove predicts {plan.predicted_downtime_ms} ms "
        f"downtime, {plan.predicted_total_ms / 1000:.1f} s in all ({plan.prediction_basis})")
    before = last_step(client)
    created = client.create_move(COMPONENT, target, options=options)
    end = finish(client, created.id, timeout=deadline)
    if end.phase != rpb.MOVE_PHASE_DONE:
        detail = f"move {phase_name(end.phase)}: {end.error.reason} {end.error.message}".strip()
        say(f"{mode}: {detail}")
        return Result(mode, plan, end, False, detail)
    intact, detail = check_intact(client, target, before, timeout=60)
    say(f"{mode}: done in {end.total_ms / 1000:.1f} s, downtime {end.downtime_ms} ms; {detail}")
    return Result(mode, plan, end, intact, detail)


# --- the report ------------------------------------------------------------------------

def print_report(results: list[Result], rate: float, nominal: float,
                 manifests: tuple[int, int], table_pages: int, hot_pages: int,
                 options: rpb.MoveOptions) -> None:
    header = (f"{'mode':<10} {'result':<11} {'rounds':>6} {'page KiB':>9} {'wire KiB':>9} "
              f"{'total ms':>9} {'downtime ms':>11} {'PlanMove ms':>11} {'engine ms':>9} "
              f"{'stop rule':<12} intact")
    print(header)
    print("-" * len(header))
    for r in results:
        m = r.move
        print(f"{r.mode:<10} {phase_name(m.phase):<11} {len(m.rounds):>6} "
              f"{r.page_bytes / KIB:>9.1f} {r.wire_bytes / KIB:>9.1f} {m.total_ms:>9} "
              f"{m.downtime_ms:>11} {r.plan.predicted_downtime_ms:>11} "
              f"{m.predicted_downtime_ms if r.mode == 'live' else '-':>9} "
              f"{m.stop_rule or '-':<12} {'yes' if r.intact else 'NO'}: {r.detail}")

    print()
    print("rounds (wire bytes: compressed page bytes; the same bytes crossed each link, the "
          "source's UART and the target's)")
    header = (f"{'mode':<10} {'round':>5} {'final':>5} {'pages':>6} {'page KiB':>9} "
              f"{'wire KiB':>9} {'ms':>7} {'page KiB/s':>10} {'dirty B/s':>9}")
    print(header)
    print("-" * len(header))
    for r in results:
        for rnd in r.move.rounds:
            speed = rnd.page_bytes / KIB / (rnd.duration_ms / 1000) if rnd.duration_ms else 0
            print(f"{r.mode:<10} {rnd.index:>5} {'yes' if rnd.final else 'no':>5} "
                  f"{rnd.pages:>6} {rnd.page_bytes / KIB:>9.1f} {rnd.wire_bytes / KIB:>9.1f} "
                  f"{rnd.duration_ms:>7} {speed:>10.1f} {rnd.dirty_rate_bytes_per_s:>9}")

    print()
    print(f"downtime split, at the line rate measured here ({rate:.0f} B/s; nominal "
          f"{nominal:.0f}): delta = the final round's page wire bytes; ours = the rest of the "
          "downtime: the round's manifest (measured in-process), the rest of the final round "
          "(freeze, capture, framing, acks, staging) and what follows it (commit)")
    header = (f"{'mode':<10} {'downtime ms':>11} {'delta B':>9} {'delta ms':>8} "
              f"{'x delta':>7} {'ours ms':>7} {'ours %':>6} {'manifest B':>10} "
              f"{'manifest ms':>11} {'round rest ms':>13} {'commit ms':>9}")
    print(header)
    print("-" * len(header))
    for r in results:
        if not r.done or r.final is None:
            print(f"{r.mode:<10} {'-':>11} (no downtime: the move did not complete)")
            continue
        downtime = r.move.downtime_ms
        delta_ms = r.final.wire_bytes / rate * 1000
        manifest = manifests[0 if r.final.index == 0 else 1]
        manifest_ms = manifest / rate * 1000
        ours = downtime - delta_ms
        print(f"{r.mode:<10} {downtime:>11} {r.final.wire_bytes:>9} {delta_ms:>8.0f} "
              f"{downtime / delta_ms:>6.2f}x {ours:>7.0f} {100 * ours / max(downtime, 1):>5.0f}% "
              f"{manifest:>10} {manifest_ms:>11.0f} "
              f"{r.final.duration_ms - delta_ms - manifest_ms:>13.0f} "
              f"{downtime - r.final.duration_ms:>9}")

    print()
    by_mode = {r.mode: r for r in results}
    live, stop = by_mode.get("live"), by_mode.get("stop-copy")
    budget = options.max_downtime_ms or 300
    policy = rpb.OvershootPolicy.Name(options.on_overshoot).removeprefix("OVERSHOOT_POLICY_")
    print(f"live move options       max_downtime {budget} ms, on_overshoot {policy.lower()}")
    if live and stop and live.done and stop.done and live.final and stop.final:
        ratio = live.move.downtime_ms / max(stop.move.downtime_ms, 1)
        wire_limit = live.final.wire_bytes / max(stop.final.wire_bytes, 1)
        print(f"live / stop-copy        downtime ratio {ratio:.4f}   goal <= {DOWNTIME_GOAL}   "
              f"({'met' if ratio <= DOWNTIME_GOAL else 'NOT met'}); wire limit "
              f"{wire_limit:.4f} (final delta / full wire bytes; {hot_pages} hot of "
              f"{table_pages} table pages = {hot_pages / table_pages:.4f})")
        print(f"live / stop-copy        total time ratio "
              f"{live.move.total_ms / stop.move.total_ms:.3f}; wire bytes ratio "
              f"{live.wire_bytes / max(stop.wire_bytes, 1):.3f}")
    if live and live.done and live.final:
        delta_ms = live.final.wire_bytes / rate * 1000
        manifest_ms = manifests[1] / rate * 1000
        ours = live.move.downtime_ms - delta_ms
        print(f"live downtime           {live.move.downtime_ms} ms = "
              f"{live.move.downtime_ms / delta_ms:.2f} x the final delta's wire time: wire "
              f"{delta_ms:.0f} ms + ours {ours:.0f} ms "
              f"(manifest over the UART {manifest_ms:.0f} ms, rest of the final round "
              f"{live.final.duration_ms - delta_ms - manifest_ms:.0f} ms, commit "
              f"{live.move.downtime_ms - live.final.duration_ms} ms)")
    for r in results:
        if r.done:
            engine = (f", engine at freeze {r.move.predicted_downtime_ms} ms"
                      if r.mode == "live" else "")
            print(f"prediction {r.mode:<12} PlanMove {r.plan.predicted_downtime_ms} ms{engine}, "
                  f"actual {r.move.downtime_ms} ms; PlanMove total "
                  f"{r.plan.predicted_total_ms} ms, actual {r.move.total_ms} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 2 MiB table instead of 8 MiB")
    parser.add_argument("--baud", type=int, default=921600, help="both boards' line rate")
    parser.add_argument("--max-downtime-ms", type=int, default=300,
                        help="the live move's downtime budget [default: 300, QEMU's]")
    parser.add_argument("--on-overshoot", choices=("accept", "abort"), default="accept",
                        help="when the budget cannot be met [default: accept]")
    parser.add_argument("--table-kib", type=int, default=None,
                        help="kvstore's table size [default: 8192, --quick 2048]")
    parser.add_argument("--hot-pages", type=int, default=HOT_PAGES)
    parser.add_argument("--period-ms", type=int, default=PERIOD_MS)
    args = parser.parse_args(argv)
    table_kib = args.table_kib or (2048 if args.quick else 8192)
    began = time.monotonic()

    def say(message: str) -> None:
        print(f"[{time.monotonic() - began:6.1f} s] {message}", flush=True)

    config = kvstore_config(table_kib, args.hot_pages, args.period_ms)
    manifests = manifest_sizes(config)
    nominal = line_rate(args.baud)
    rate = measure_line_rate(args.baud, 1.0 if args.quick else 3.0)
    # A hung move ends the run: far beyond a stop-and-copy at the line rate.
    deadline = 4 * table_kib * KIB / nominal + 180
    live_options = rpb.MoveOptions(
        mode=rpb.MOVE_MODE_LIVE, max_downtime_ms=args.max_downtime_ms,
        on_overshoot=(rpb.OVERSHOOT_POLICY_ACCEPT if args.on_overshoot == "accept"
                      else rpb.OVERSHOOT_POLICY_ABORT))
    stop_options = rpb.MoveOptions(mode=rpb.MOVE_MODE_STOP_COPY)

    results: list[Result] = []
    with LabRun(2, args.baud, say=say) as run:
        client = run.client
        bauds = {b.name: b.baud for b in client.list_boards()}
        lines = ", ".join(f"{name} {baud or 'unpaced'}" for name, baud in bauds.items())
        say(f"boards' lines (baud): {lines}")
        client.start_component(COMPONENT, "boardA", config=config)
        wait_for(lambda: any(CHECK.match(line.text) for line in client.stream_logs(COMPONENT)),
                 120, "kvstore's first full-table check")
        say(f"kvstore runs on boardA: {table_kib} KiB random table, {args.hot_pages} hot pages "
            f"x {WORDS_PER_PAGE} words every {args.period_ms} ms")
        results.append(move(client, "live", live_options, deadline, say))
        results.append(move(client, "stop-copy", stop_options, deadline, say))

    print()
    print(f"migration: kvstore, {table_kib} KiB table (fill=random), {args.hot_pages} hot pages x "
          f"{WORDS_PER_PAGE} words every {args.period_ms} ms; 2 board servers at {args.baud} "
          "baud, an agent each, one coordinator (processes on loopback)")
    print()
    print_report(results, rate, nominal, manifests, table_kib * KIB // PAGE, args.hot_pages,
                 live_options)
    print(f"machine                 Python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs; total {time.monotonic() - began:.1f} s")
    ok = all(r.done and r.intact for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
