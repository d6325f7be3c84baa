"""The runtime's capability map is shared by all threads of a component:
reserving a receive slot, accepting a capability and looking a badge up
take its lock. Without the lock, two threads of the ticker that reserve at
the same time at short time slices get the same slot: the kernel installs
both capabilities there, the second overwrites the first, and one thread
holds a selector for the wrong object. No move is involved."""

import random

import pytest

from genode_cr.emu.capture import read_cap_map

from .conftest import errors_in

#: Seeds whose slice lengths made two ticker threads share a slot before the
#: lock existed (seen with the unlocked runtime).
SEEDS = [0, 6, 7, 17]


def map_disagrees_with_kernel(child):
    """Used map entries whose slot holds another object in the kernel."""
    wrong = []
    for index, (badge, _) in read_cap_map(child).items():
        obj = child.pd.cap_space.lookup(index << 12)
        if obj is None or obj.badge != badge:
            wrong.append(f"slot {index:#x}: map {badge}, kernel {obj!r}")
    return wrong


def run_ticker(make_board, seed, seconds, shortest=5, longest=60):
    rng = random.Random(seed)
    board = make_board("boardA", quantum=rng.randint(shortest, longest))
    board.cr.start("ticker")
    child = board.cr.children["ticker"]
    while board.now < seconds:
        board.kernel.quantum = rng.randint(shortest, longest)
        board.run(0.0005)
        assert not errors_in(board, "ticker"), f"seed {seed}: {board.log('ticker')}"
    assert not map_disagrees_with_kernel(child), f"seed {seed}"
    return board


@pytest.mark.parametrize("seed", SEEDS)
def test_threads_reserve_distinct_slots_at_short_slices(make_board, seed):
    board = run_ticker(make_board, seed, 1.2)
    log = board.log("ticker")
    assert any(line.startswith("badge check ok") for line in log), f"seed {seed}: {log}"
    assert any(line.startswith("entrypoint answered") for line in log), f"seed {seed}: {log}"


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 110))
def test_ticker_runs_long_at_short_slices(make_board, seed):
    board = run_ticker(make_board, seed, 4.0, shortest=3, longest=150)
    checks = [line for line in board.log("ticker") if line.startswith("badge check ok")]
    assert len(checks) >= 3, f"seed {seed}: {board.log('ticker')}"
