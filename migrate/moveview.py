"""How a move is shown: while it runs (on stderr) and when it has ended (on stdout).

``MoveProgressModel`` turns the Move messages of WatchMove into what a person
sees; ``BarView`` draws it with rich on a terminal, ``LineView`` prints a line
per phase and round for pipes and logs (rich would draw nothing there).
``watch_move`` follows a move to its end and turns the first Ctrl-C into
CancelMove. Used by `migrate move` and the demo.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from genode_cr.inspection import human_size

from . import errors
from .client import CoordinatorClient
from .v1 import resources_pb2 as res

__all__ = [
    "MoveProgressModel",
    "LineView",
    "BarView",
    "ENDED",
    "open_view",
    "watch_move",
    "move_text",
    "plan_text",
    "round_line",
    "table",
    "enum_name",
    "phase_name",
    "ms",
    "rate",
    "interactive_stderr",
]


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
                     for row in [headers, *rows])


def enum_name(enum: Any, value: int, prefix: str) -> str:
    """MOVE_PHASE_PRE_COPY -> pre-copy."""
    return enum.Name(value).removeprefix(prefix).lower().replace("_", "-")


def phase_name(value: int) -> str:
    return enum_name(res.MovePhase, value, "MOVE_PHASE_")


def ms(millis: int) -> str:
    return f"{millis} ms" if millis < 10_000 else f"{millis / 1000:.1f} s"


def rate(bytes_per_s: int) -> str:
    return f"{human_size(bytes_per_s)}/s"


ENDED = frozenset({res.MOVE_PHASE_DONE, res.MOVE_PHASE_FAILED, res.MOVE_PHASE_ROLLED_BACK,
                   res.MOVE_PHASE_CANCELLED})


class MoveProgressModel:
    """What a move's progress display shows, from the Move messages of WatchMove.

    The percentage never runs backwards: the coordinator's estimate may drop when
    a round dirties more than expected, but a bar that shrinks reads as a fault,
    so the model keeps the highest value seen (and 100 once the move is done).
    ``update`` returns what happened since the previous message, for a display
    that prints lines instead of redrawing a bar.
    """

    def __init__(self) -> None:
        self.percent = 0.0
        self.move: res.Move | None = None
        self._phase = res.MOVE_PHASE_UNSPECIFIED
        self._rounds = 0

    def update(self, move: res.Move) -> list[str]:
        percent = 100.0 if move.phase == res.MOVE_PHASE_DONE else move.progress.percent
        self.percent = max(self.percent, min(100.0, max(0.0, percent)))
        self.move = move
        events = []
        if move.phase != self._phase:
            self._phase = move.phase
            events.append(f"move {move.id}: {phase_name(move.phase)}")
        for r in move.rounds[self._rounds:]:
            events.append("  " + round_line(r))
        self._rounds = max(self._rounds, len(move.rounds))
        return events

    @property
    def phase(self) -> str:
        return phase_name(self._phase)

    def detail(self) -> str:
        """One line: round, bytes, rates, expected downtime, convergence."""
        if self.move is None:
            return ""
        p = self.move.progress
        parts = [f"round {p.round}", f"{human_size(p.bytes_sent)} sent",
                 f"{human_size(p.bytes_remaining)} left"]
        if p.goodput_bytes_per_s:
            parts.append(f"goodput {rate(p.goodput_bytes_per_s)}")
        if p.dirty_rate_bytes_per_s:
            parts.append(f"dirty {rate(p.dirty_rate_bytes_per_s)}")
        if p.expected_downtime_ms:
            parts.append(f"downtime ~{ms(p.expected_downtime_ms)}")
        if p.convergence:
            parts.append(enum_name(res.Convergence, p.convergence, "CONVERGENCE_")
                         + (f" ({p.convergence_reason})" if p.convergence_reason else ""))
        return ", ".join(parts)


def round_line(r: res.MoveRound) -> str:
    name = "final round" if r.final else f"round {r.index}"
    return (f"{name}: {r.pages} pages, {human_size(r.page_bytes)} "
            f"({human_size(r.wire_bytes)} on the wire) in {ms(r.duration_ms)}")


class LineView:
    """Progress for logs and pipes: a line per phase and per round, on stderr."""

    def __init__(self, model: MoveProgressModel, quiet: bool):
        self.model, self.quiet = model, quiet

    def __enter__(self) -> LineView:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, move: res.Move) -> None:
        for line in self.model.update(move):
            self.note(line)

    def note(self, message: str) -> None:
        if not self.quiet:
            click.echo(message, err=True)


class BarView:
    """Progress on a terminal: phase, a bar that never shrinks, and the detail line."""

    def __init__(self, model: MoveProgressModel):
        from rich.console import Console, Group
        from rich.live import Live
        from rich.progress import (BarColumn, Progress, SpinnerColumn, TaskProgressColumn,
                                   TextColumn, TimeElapsedColumn)
        from rich.text import Text

        self.model = model
        self.console = Console(stderr=True, highlight=False)
        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description:<14}"), BarColumn(),
                            TaskProgressColumn(), TimeElapsedColumn(), console=self.console)
        self.task = self.bar.add_task("pending", total=100)

        class Detail:
            def __rich__(_self) -> Text:
                return Text("  " + model.detail(), style="dim")

        self.live = Live(Group(self.bar, Detail()), console=self.console,
                         refresh_per_second=8)

    def __enter__(self) -> BarView:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def update(self, move: res.Move) -> None:
        for line in self.model.update(move):
            if line.startswith("  "):           # rounds scroll above the bar
                self.console.print(line, style="dim")
        self.bar.update(self.task, completed=self.model.percent, description=self.model.phase)

    def note(self, message: str) -> None:
        self.console.print(message)


def interactive_stderr() -> bool:
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


def open_view(model: MoveProgressModel, *, quiet: bool = False) -> LineView | BarView:
    """A bar on a terminal; lines on a pipe or a dumb terminal; nothing with ``quiet``."""
    if interactive_stderr() and not quiet:
        return BarView(model)
    return LineView(model, quiet)


def watch_move(client: CoordinatorClient, move: res.Move, view: LineView | BarView
               ) -> tuple[res.Move, bool]:
    """Follows the move until it ends; returns it and whether Ctrl-C cancelled it.

    The first Ctrl-C asks the coordinator to cancel and keeps watching the
    rollback; a second one leaves at once (KeyboardInterrupt), the move goes on.
    """
    interrupted = False
    quiet_streams = 0
    view.update(move)
    while move.phase not in ENDED:
        try:
            before = move
            for move in client.watch_move(move.id):
                view.update(move)
                if move.phase in ENDED:
                    break
            else:
                # The stream closed before the end (a coordinator restart): look again.
                move = client.get_move(move.id)
                view.update(move)
                quiet_streams = 0 if move != before else quiet_streams + 1
                if quiet_streams > 3:
                    raise errors.Unavailable(f"the coordinator stopped reporting move {move.id}")
        except KeyboardInterrupt:
            if interrupted:
                raise
            interrupted = True
            view.note(f"Ctrl-C: cancelling move {move.id}, waiting for the rollback "
                      "(Ctrl-C again to stop waiting)")
            try:
                move = client.cancel_move(move.id)
            except errors.MigrateError as error:
                view.note(f"the move cannot be cancelled: {error}")
    return move, interrupted


def move_text(move: res.Move) -> str:
    mode = enum_name(res.MoveMode, move.options.mode or res.MOVE_MODE_LIVE, "MOVE_MODE_")
    lines = [f"move {move.id}: {move.component} {move.source_board} -> {move.target_board} "
             f"({mode}): {phase_name(move.phase)}"]
    if move.rounds:
        lines.append(table(
            ["ROUND", "PAGES", "PAGE BYTES", "WIRE BYTES", "DURATION"],
            [["final" if r.final else str(r.index), str(r.pages), human_size(r.page_bytes),
              human_size(r.wire_bytes), ms(r.duration_ms)] for r in move.rounds]))
    if move.phase in ENDED:
        budget = move.options.max_downtime_ms
        lines.append(f"total {ms(move.total_ms)}, downtime {ms(move.downtime_ms)} "
                     f"(predicted {ms(move.predicted_downtime_ms)}"
                     + (f", budget {ms(budget)}" if budget else "") + ")")
    else:
        lines.append(f"progress {move.progress.percent:.0f} %, round {move.progress.round}")
    if move.stop_rule:
        lines.append(f"stop rule: {move.stop_rule}")
    if move.note:
        lines.append(f"note: {move.note}")
    if move.error.reason or move.error.message:
        lines.append(f"error: {move.error.reason}: {move.error.message}")
    return "\n".join(lines)


def plan_text(plan: res.MovePlan) -> str:
    lines = [f"plan: {plan.component} {plan.source_board} -> {plan.target_board}: "
             + ("feasible" if plan.feasible else "NOT feasible")]
    lines += [f"  {'ok  ' if c.passed else 'FAIL'} {c.name}"
              + (f": {c.detail}" if c.detail else "") for c in plan.checks]
    lines += [
        f"RAM to copy        {human_size(plan.ram_bytes)}",
        f"goodput            {rate(plan.goodput_bytes_per_s)}",
        f"dirty rate         {rate(plan.dirty_rate_bytes_per_s)}",
        f"predicted total    {ms(plan.predicted_total_ms)}",
        f"predicted downtime {ms(plan.predicted_downtime_ms)} "
        f"(stop-and-copy: {ms(plan.stop_copy_downtime_ms)})",
    ]
    if plan.prediction_basis:
        lines.append(f"basis              {plan.prediction_basis}")
    return "\n".join(lines)
