"""``make demo``: a real move between two emulated boards, shown live.

Two board servers run as processes, each with its CR component on a UART
paced at 921600 baud. The counter starts on boardA, is checkpointed to a
file while frozen, restored on boardB from that file, and boardB's log
carries on from the next number. This is what `migrate move` will automate.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .checkpoint import Checkpoint
from .client import BoardClient

BAUD = 921600
COUNT = re.compile(r"^count (\d+) ")

console = Console(stderr=False, highlight=False)


def start_board(stack: ExitStack, name: str, log_dir: Path) -> str:
    log = stack.enter_context(open(log_dir / f"{name}.log", "w"))
    process = subprocess.Popen(
        [sys.executable, "-m", "genode_cr", "board", "serve", "--name", name,
         "--uart", "socket://127.0.0.1:0", "--baud", str(BAUD)],
        stdout=subprocess.PIPE, stderr=log, text=True)
    stack.callback(_stop, process)
    line = process.stdout.readline() if process.stdout else ""
    match = re.search(r"listening on (\S+)", line)
    if not match:
        raise SystemExit(f"board {name} did not start: {line!r}")
    return match[1]


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def show_log(board: BoardClient, name: str, seconds: float, style: str) -> list[int]:
    """Shows the log as it grows for ``seconds``; returns the counts seen."""
    seen: list[int] = []
    deadline = time.monotonic() + seconds
    for line in board.follow_logs(name, idle_timeout=10):
        console.print(f"  [{style}]{board.info.name:>7} |[/] {line.text}")
        if m := COUNT.match(line.text):
            seen.append(int(m[1]))
        if time.monotonic() > deadline:
            break
    return seen


def main() -> int:
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        console.rule("[bold]genode-migrate demo: move a running counter between two boards")
        urls = {name: start_board(stack, name, Path(tmp)) for name in ("boardA", "boardB")}
        a = stack.enter_context(BoardClient.connect(urls["boardA"]))
        b = stack.enter_context(BoardClient.connect(urls["boardB"]))
        for board in (a, b):
            console.print(f"{board.info.name}: {board.info.arch}/{board.info.kernel}, UART "
                          f"{urls[board.info.name]} at {board.info.baud} baud, "
                          f"{board.info.ram_free >> 20} MiB free")

        console.print("\n[bold]1. start counter on boardA")
        a.start("counter")
        show_log(a, "counter", 2.0, "cyan")

        console.print("\n[bold]2. checkpoint it (frozen) into a file")
        started = time.monotonic()
        checkpoint = a.checkpoint("counter", freeze=True)
        path = Path(tmp) / "counter.ckpt"
        path.write_bytes(checkpoint.to_bytes())
        last = max(int(m[1]) for line in a.logs("counter") if (m := COUNT.match(line.text)))
        console.print(f"  {path.name}: {path.stat().st_size} bytes, {len(checkpoint.pages)} "
                      f"pages, taken in {time.monotonic() - started:.2f} s; last count on "
                      f"boardA: {last}")
        a.kill("counter")

        console.print("\n[bold]3. restore it on boardB from the file")
        report = b.restore(Checkpoint.from_bytes(path.read_bytes()))
        table = Table("object", "slot", "badge on boardA", "badge on boardB", box=None)
        for t in report.translations:
            if t.kcap:
                table.add_row(t.kind, hex(t.kcap >> 12), str(t.old_badge), str(t.new_badge))
        console.print(table)
        console.print(f"  {report.caps_installed} capabilities installed at their old slots, "
                      f"{report.cap_map_entries_translated} capability-map entries translated, "
                      f"{report.irqs_rebound} signal IRQ(s) re-bound, "
                      f"{report.timers_rearmed} timer(s) re-armed with their remaining time")

        console.print("\n[bold]4. boardB's log")
        after = show_log(b, "counter", 2.0, "magenta")
        if not after or after[0] != last + 1:
            console.print(f"[red]FAILED: boardA ended at {last}, boardB began at "
                          f"{after[0] if after else 'nothing'}")
            return 1
        console.print(f"\n[green bold]OK[/]: the counter went on at {after[0]} on boardB "
                      f"(boardA stopped at {last}), not at 1.")
        return 0


if __name__ == "__main__":
    sys.exit(main())
