"""Scheduling, time and the CR component's control of its children."""

from .conftest import counts, errors_in, steps


def test_a_busy_component_does_not_starve_another(make_board):
    board = make_board("boardA")
    board.cr.start("kvstore")
    board.run(3.0)                      # its digest loop now takes many time slices
    board.cr.start("counter")
    start = board.now
    board.run(2.0)
    ticks = counts(board)
    assert len(ticks) >= 9, f"counter ran {len(ticks)} times in 2 s of board time"
    lateness = [t / 1e6 - start - 0.2 * n for n, _, t in ticks]
    assert max(lateness) < 0.05, lateness
    assert max(steps(board)) > 25, "kvstore stopped making progress"


def test_pause_and_resume(make_board):
    board = make_board("boardA")
    board.cr.start("counter")
    board.run(1.0)
    board.cr.pause("counter")
    paused_at = len(counts(board))
    board.run(1.0)
    assert len(counts(board)) == paused_at
    assert board.cr.info("counter").state == "paused"
    board.cr.resume("counter")
    board.run(1.0)
    numbers = [c for c, _, _ in counts(board)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) > paused_at
    assert not errors_in(board, "counter")


def test_kill_frees_everything(make_board):
    board = make_board("boardA")
    badges = len(board.kernel.badges)
    board.cr.start("ticker")
    board.run(1.0)
    board.cr.kill("ticker")
    assert board.cr.components() == []
    assert len(board.kernel.badges) == badges
    assert board.kernel.threads == [] and board.kernel.timers == []
    board.run(0.5)
