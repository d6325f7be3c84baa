"""``make demo``: a running counter moves live from one board to another.

Everything happens through the ``migrate`` command, as a user would type it,
and each command is printed before it runs: a lab of two emulated boards
(UARTs paced at 921600 baud), their agents and a coordinator comes up, the
counter starts on boardA, moves live to boardB with the progress shown as
`migrate move` draws it, and boardB's log carries on from the next number.
The lab lives in a temporary XDG state and config home, so a lab the user
runs is not disturbed, and it is taken down at the end, on failure and on
Ctrl-C too.

    python -m migrate.demo
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from rich.console import Console

__all__ = ["main"]

BAUD = 921600
#: How many numbers the counter shows on each board before and after the move.
SHOWN = 5
#: Guard against a hung step; the demo normally takes a few seconds.
STEP_DEADLINE = 60.0
COUNT = re.compile(r"^count (\d+) ")

_BIN = Path(sys.executable).parent
#: The installed entry point, as a user runs it; `python -m` if it is not installed.
MIGRATE = ([str(_BIN / "migrate")] if (_BIN / "migrate").is_file()
           else [sys.executable, "-m", "migrate.cli"])

console = Console(highlight=False)
STYLE = {"boardA": "cyan", "boardB": "magenta"}


class DemoFailed(Exception):
    pass


def migrate(env: dict[str, str], *args: str) -> None:
    """Prints the command, then runs it on this terminal (its progress bar included)."""
    console.print(f"[bold green]$[/] [bold]migrate {shlex.join(args)}[/]")
    process = subprocess.Popen([*MIGRATE, *args], env=env)
    try:
        code = process.wait()
    except KeyboardInterrupt:
        # The command got the Ctrl-C too and handles it (a move cancels and rolls back).
        process.wait()
        raise
    if code != 0:
        raise DemoFailed(f"`migrate {shlex.join(args)}` exited {code}")
    console.print()


class LogFollower:
    """`migrate logs COMPONENT -f -o json` in the background: the log across the move.

    Lines are queued, and shown only when the demo asks, so that they never
    cut through the progress bar of `migrate move`.
    """

    def __init__(self, env: dict[str, str], component: str):
        self.process = subprocess.Popen([*MIGRATE, "logs", component, "-f", "-o", "json"],
                                        env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
        self.lines: queue.Queue[dict | None] = queue.Queue()
        self.counts: dict[str, list[int]] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def show_until(self, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + STEP_DEADLINE
        while not done():
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise DemoFailed("the counter stopped logging") from None
            if line is None:
                raise DemoFailed("`migrate logs -f` ended")
            board = line.get("board", "?")
            console.print(f"  [{STYLE.get(board, 'white')}]{board:>7} |[/] {line['text']}")
            if m := COUNT.match(line["text"]):
                self.counts.setdefault(board, []).append(int(m[1]))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_demo(env: dict[str, str]) -> None:
    console.rule("[bold]genode-migrate: move a running counter from boardA to boardB")
    console.print(f"A lab of two emulated boards, UARTs at {BAUD} baud, in "
                  f"{env['XDG_STATE_HOME']}.\n")
    migrate(env, "lab", "up", "--boards", "2", "--baud", str(BAUD))
    migrate(env, "boards")
    migrate(env, "start", "counter", "--on", "boardA")

    console.print("[bold green]$[/] [bold]migrate logs counter -f[/]   [dim](in the background)[/]")
    follower = LogFollower(env, "counter")
    try:
        follower.show_until(lambda: len(follower.counts.get("boardA", [])) >= SHOWN)
        console.print()
        migrate(env, "move", "counter", "--from", "boardA", "--to", "boardB")
        # The follower queued boardA's last lines during the move: show them, then boardB's.
        follower.show_until(lambda: len(follower.counts.get("boardB", [])) >= SHOWN)
    finally:
        follower.stop()
    console.print()

    last_a, first_b = follower.counts["boardA"][-1], follower.counts["boardB"][0]
    if first_b != last_a + 1:
        raise DemoFailed(f"boardA's last count was {last_a}, boardB's first is {first_b}")
    console.print(f"[bold]boardA counted to {last_a}; boardB went on with {first_b}:[/] "
                  "the counter moved with its memory, threads, timer and capabilities.\n")
    migrate(env, "ps")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="genode-migrate-demo-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATE_")}
        env["XDG_STATE_HOME"] = str(Path(home) / "state")
        env["XDG_CONFIG_HOME"] = str(Path(home) / "config")
        code = 0
        try:
            run_demo(env)
        except DemoFailed as error:
            console.print(f"[bold red]demo failed:[/] {error}")
            code = 1
        except KeyboardInterrupt:
            console.print("\n[bold]interrupted[/]")
            code = 130
        finally:
            # Taken down whatever happened; a second Ctrl-C here must not leave boards running.
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                migrate(env, "lab", "down")
            except DemoFailed as error:
                console.print(f"[bold red]{error}[/]")
                code = code or 1
            finally:
                signal.signal(signal.SIGINT, previous)
        if code == 1:
            _show_log_tails(Path(env["XDG_STATE_HOME"]) / "genode-migrate" / "lab")
        return code


def _show_log_tails(lab_dir: Path, lines: int = 8) -> None:
    """The end of each lab process's log: the temporary directory goes away next."""
    for log in sorted(lab_dir.glob("*.log")):
        console.rule(f"[dim]{log.name}")
        console.print("\n".join(log.read_text(errors="replace").splitlines()[-lines:]),
                      markup=False)


if __name__ == "__main__":
    sys.exit(main())
