"""Checkpoint and restore at random instants with random time-slice lengths.

Each trial starts a component on a board whose time slices are a random
number of instructions (down to a few dozen), runs it for a random stretch of
board time, checkpoints it (one frozen checkpoint, or a chain of live ones
ending in a frozen one, each at a random instant), restores it in place (the
original killed first) or on a second board, and runs it on. The component
must continue exactly where it stopped: counter's counts go on by one, the
kvstore's digest after each step is the one an undisturbed run computes, the
ticker's ticks and its entrypoint's answers go on from where they were, the
divider's checksum after each batch is an undisturbed run's (its divisions run
in libgcc's Thumb-2 helpers, where a slice often ends), and
no component logs an error or faults.

A failing trial names its seed; ``PROPERTY_SEED=<seed> pytest -k property``
replays it alone.
"""

from __future__ import annotations

import math
import os
import random
import re
from dataclasses import dataclass
from functools import lru_cache

import pytest

from genode_cr.emu import Board

from .conftest import COUNT, STEP, errors_in, steps

#: kvstore at a size that keeps its full checks cheap at short slices.
KVSTORE_CONFIG = "table_kib=512; period_ms=40; check_every=4; writes=24"
TICK = re.compile(r"^tick (\d+)$")
ANSWER = re.compile(r"^entrypoint answered ticks (\d+)$")
BATCH = re.compile(r"^batch (\d+) checksum ([0-9a-f]{8})$")
#: divider at a size that keeps many batches cheap at short slices.
DIVIDER_CONFIG = "batch=40; period_ms=20"
COMPONENTS = ("counter", "kvstore", "ticker", "divider")
CONFIGS = {"kvstore": KVSTORE_CONFIG, "divider": DIVIDER_CONFIG}


@dataclass(frozen=True)
class Trial:
    seed: int
    component: str
    quantum: int
    run_before: float
    live_rounds: list[float]      # board seconds before each live checkpoint
    across: bool                  # restore on a second board, or in place

    @classmethod
    def draw(cls, seed: int) -> Trial:
        rng = random.Random(seed)
        # Log-uniform: short slices are where the instants worth testing are.
        quantum = int(math.exp(rng.uniform(math.log(24), math.log(20_000))))
        return cls(seed, rng.choice(COMPONENTS), quantum, rng.uniform(0.05, 1.2),
                   [rng.uniform(0.0, 0.3) for _ in range(rng.choice((0, 0, 1, 3)))],
                   rng.random() < 0.6)

    def __str__(self) -> str:
        where = "on another board" if self.across else "in place"
        return (f"seed {self.seed}: {self.component}, {self.quantum}-instruction slices, "
                f"{self.run_before:.3f} s, {len(self.live_rounds)} live round(s), "
                f"restored {where}")


def start(board: Board, component: str) -> None:
    board.cr.start(component, config=CONFIGS.get(component, ""))


def batches(log: list[str]) -> dict[int, str]:
    return {int(m[1]): m[2] for m in map(BATCH.match, log) if m}


@lru_cache(maxsize=None)
def reference_digests(rom_dir) -> dict[int, tuple[int, str]]:
    """kvstore's steps in an undisturbed run at the default time slice."""
    board = Board("reference", rom_dir=rom_dir)
    start(board, "kvstore")
    board.run_until(lambda: len(steps(board)) >= 60, timeout=60)
    return steps(board)


@lru_cache(maxsize=None)
def reference_batches(rom_dir) -> dict[int, str]:
    """divider's checksums in an undisturbed run at the default time slice."""
    board = Board("reference", rom_dir=rom_dir)
    start(board, "divider")
    board.run_until(lambda: len(batches(board.log("divider"))) >= 200, timeout=60)
    return batches(board.log("divider"))


def progressed(board: Board, component: str) -> bool:
    """Whether a restored component logged enough to judge it."""
    if component == "counter":
        return sum(1 for t in board.log("counter") if COUNT.match(t)) >= 3
    if component == "kvstore":
        return len(steps(board)) >= 3
    if component == "divider":
        return len(batches(board.log("divider"))) >= 3
    ticks, answers = ticker_progress(board.log("ticker"))
    return len(ticks) >= 2 and len(answers) >= 2


def run_trial(trial: Trial, rom_dir) -> None:
    a = Board("boardA", rom_dir=rom_dir, quantum=trial.quantum)
    start(a, trial.component)
    a.run(trial.run_before)
    chain = []
    for seconds in trial.live_rounds:
        chain.append(a.cr.checkpoint(trial.component, since=chain[-1] if chain else None))
        a.run(seconds)
    chain.append(a.cr.checkpoint(trial.component, since=chain[-1] if chain else None,
                                 freeze=True))
    before = list(a.log(trial.component))
    assert not errors_in(a, trial.component), before[-5:]

    if trial.across:
        target = Board("boardB", rom_dir=rom_dir, quantum=trial.quantum)
        target.run(0.01)        # the target's own clock is elsewhere
        a.cr.kill(trial.component)
    else:
        target = a
        a.cr.kill(trial.component)
    target.cr.restore(chain)       # a restored incarnation's log starts empty
    target.run_until(lambda: progressed(target, trial.component)
                     or bool(errors_in(target, trial.component)), timeout=8)
    after = target.log(trial.component)
    problems = [line for line in after if "Error" in line or "[core]" in line]
    assert not problems, problems[:3]

    if trial.component == "counter":
        counts = [int(m[1]) for m in map(COUNT.match, before + after) if m]
        assert counts == list(range(1, len(counts) + 1)), counts[-10:]
    elif trial.component == "kvstore":
        matches = [m for m in map(STEP.match, before + after) if m]
        logged = {int(m[1]): (int(m[2]), m[3]) for m in matches}
        numbers = [int(m[1]) for m in matches]      # each step once, in order
        assert numbers == list(range(1, len(numbers) + 1)), numbers[-10:]
        reference = reference_digests(rom_dir)
        assert len(numbers) <= len(reference), "raise the reference run"
        assert {n: logged[n] for n in numbers} == {n: reference[n] for n in numbers}
    elif trial.component == "divider":
        logged = batches(before + after)
        numbers = [int(m[1]) for m in map(BATCH.match, before + after) if m]
        assert numbers == list(range(1, len(numbers) + 1)), numbers[-10:]
        reference = reference_batches(rom_dir)
        assert len(numbers) <= len(reference), "raise the reference run"
        assert logged == {n: reference[n] for n in numbers}
    else:
        ticks_before, answers_before = ticker_progress(before)
        ticks_after, answers_after = ticker_progress(after)
        assert ticks_after and answers_after
        if ticks_before:
            assert ticks_after[0] > ticks_before[-1], (ticks_before[-3:], ticks_after[:3])
        if answers_before:
            assert answers_after[0] >= answers_before[-1]
        assert ticks_after == sorted(ticks_after) and answers_after == sorted(answers_after)


def ticker_progress(log: list[str]) -> tuple[list[int], list[int]]:
    return ([int(m[1]) for m in map(TICK.match, log) if m],
            [int(m[1]) for m in map(ANSWER.match, log) if m])


def seeds(count: int, base: int) -> list[int]:
    if os.environ.get("PROPERTY_SEED"):
        return [int(os.environ["PROPERTY_SEED"])]
    return [base + i for i in range(count)]


def check_seed(seed: int, rom_dir) -> None:
    trial = Trial.draw(seed)
    try:
        run_trial(trial, rom_dir)
    except BaseException as error:
        raise AssertionError(f"{trial}: {error}") from error


@pytest.mark.parametrize("seed", seeds(12, 1000))
def test_restore_at_random_instants_continues_exactly(seed, rom_dir):
    check_seed(seed, rom_dir)


@pytest.mark.slow
@pytest.mark.parametrize("seed", seeds(120, 50_000))
def test_restore_at_random_instants_continues_exactly_long(seed, rom_dir):
    check_seed(seed, rom_dir)
