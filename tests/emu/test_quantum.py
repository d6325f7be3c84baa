"""The time-slice length: a board parameter that changes where threads are
preempted, never what they compute, and whose slices cost board time in
proportion to their length."""

import math
import re

import pytest

from genode_cr.emu import Board
from genode_cr.emu.kernel import NS_PER_INSTRUCTION, QUANTUM_INSTRUCTIONS

from .conftest import counts, errors_in

BATCH = re.compile(r"^batch (\d+) checksum ([0-9a-f]{8})$")
BUSY = "batch=50; period_ms=0; batches=0"    # divides without ever sleeping


@pytest.fixture
def divider_rom(rom_dir):
    if not (rom_dir / "divider").is_file():
        pytest.fail(f"ROM divider missing in {rom_dir}: run `make roms`")


def batch_times(board):
    return {int(m[1]): e.time_us for e in board.log_entries("divider")
            if (m := BATCH.match(e.text))}


def test_default_quantum_is_unchanged(make_board):
    board = make_board("boardA")
    assert board.kernel.quantum == QUANTUM_INSTRUCTIONS == 100_000
    assert QUANTUM_INSTRUCTIONS * NS_PER_INSTRUCTION == 1_000_000     # a 1 ms slice
    board.cr.start("counter")
    board.run(1.05)
    assert [c for c, _, _ in counts(board)] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("quantum", [0, -5, 2.5, None])
def test_a_quantum_must_be_a_positive_count(make_board, quantum):
    with pytest.raises(ValueError):
        make_board("boardA", quantum=quantum)
    board = make_board("boardA")
    with pytest.raises(ValueError):
        board.kernel.quantum = quantum
    assert board.kernel.quantum == QUANTUM_INSTRUCTIONS


def test_board_passes_the_quantum_to_its_kernel(make_board):
    board = make_board("boardA", quantum=4321)
    assert board.kernel.quantum == 4321
    board.kernel.quantum = 17
    assert board.kernel.quantum == 17


@pytest.mark.parametrize("quantum", [1_000, 250_000])
def test_a_full_slice_costs_its_quantum(make_board, divider_rom, quantum):
    """A busy component that never blocks uses every slice in full; its log
    lines carry the board time at the start of their slice."""
    board = make_board("boardA", quantum=quantum)
    board.cr.start("divider", config=BUSY)
    board.run(0.025)
    times = sorted(set(batch_times(board).values()))
    slice_us = quantum * NS_PER_INSTRUCTION // 1000
    assert len(times) >= 8 and not errors_in(board, "divider")
    assert all(t % slice_us == 0 for t in times), times
    assert math.gcd(*(b - a for a, b in zip(times, times[1:]))) == slice_us, times


def test_short_slices_add_up(make_board, divider_rom):
    """Slices shorter than a microsecond are charged too: their nanoseconds
    are carried, so board time follows the work as with long slices."""
    reference = make_board("boardA", quantum=1_000)
    reference.cr.start("divider", config=BUSY)
    reference.run(0.004)
    board = make_board("boardB", quantum=37)
    board.cr.start("divider", config=BUSY)
    board.run(0.004)
    expected, got = batch_times(reference), batch_times(board)
    assert len(expected) > 20 and not errors_in(board, "divider")
    common = sorted(expected.keys() & got.keys())
    assert len(common) >= 0.9 * len(expected), (len(common), len(expected))
    for n in common[len(common) // 2:]:
        # Only slice boundaries differ: a slice ending in a system call is
        # charged its fixed cost instead of the instructions it ran.
        assert got[n] == pytest.approx(expected[n], rel=0.05), n


def test_changing_the_quantum_between_runs(make_board):
    board = make_board("boardA", quantum=500)
    board.cr.start("counter")
    board.run(0.5)
    board.kernel.quantum = 60
    board.run(0.5)
    board.kernel.quantum = QUANTUM_INSTRUCTIONS
    board.run(0.25)
    assert [c for c, _, _ in counts(board)] == [1, 2, 3, 4, 5, 6]
    assert not errors_in(board, "counter")


def test_board_signature_keeps_its_defaults(rom_dir):
    board = Board("boardA", rom_dir=rom_dir)
    assert board.kernel.quantum == QUANTUM_INSTRUCTIONS
