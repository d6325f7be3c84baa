"""The move progress model: what the bar and the line view show."""

from __future__ import annotations

from migrate.moveview import MoveProgressModel
from migrate.v1 import resources_pb2 as res


def move(phase: int, percent: float, rounds: int = 0, **progress) -> res.Move:
    return res.Move(id="m1", phase=phase,
                    progress=res.MoveProgress(percent=percent, **progress),
                    rounds=[res.MoveRound(index=i, pages=10 * (i + 1), page_bytes=4096,
                                          wire_bytes=1000, duration_ms=5)
                            for i in range(rounds)])


def test_percent_never_runs_backwards():
    model = MoveProgressModel()
    seen = []
    for p in [0, 10, 35, 20, 50, 49.5, 80, 60]:
        model.update(move(res.MOVE_PHASE_PRE_COPY, p))
        seen.append(model.percent)
    assert seen == [0, 10, 35, 35, 50, 50, 80, 80]


def test_percent_is_clamped_and_done_is_full():
    model = MoveProgressModel()
    model.update(move(res.MOVE_PHASE_PRE_COPY, 140))
    assert model.percent == 100
    model = MoveProgressModel()
    model.update(move(res.MOVE_PHASE_PRE_COPY, -3))
    assert model.percent == 0
    model.update(move(res.MOVE_PHASE_DONE, 90))       # a coordinator that rounds down
    assert model.percent == 100


def test_a_failed_move_keeps_the_bar_where_it_was():
    model = MoveProgressModel()
    model.update(move(res.MOVE_PHASE_PRE_COPY, 70))
    model.update(move(res.MOVE_PHASE_ROLLED_BACK, 0))
    assert model.percent == 70
    assert model.phase == "rolled-back"


def test_events_name_each_phase_once_and_each_round_once():
    model = MoveProgressModel()
    events = []
    for m in [move(res.MOVE_PHASE_PREFLIGHT, 0), move(res.MOVE_PHASE_PRE_COPY, 10),
              move(res.MOVE_PHASE_PRE_COPY, 30, rounds=1),
              move(res.MOVE_PHASE_PRE_COPY, 40, rounds=1),
              move(res.MOVE_PHASE_PRE_COPY, 60, rounds=3),
              move(res.MOVE_PHASE_DONE, 100, rounds=3)]:
        events += model.update(m)
    assert events == [
        "move m1: preflight", "move m1: pre-copy",
        "  round 0: 10 pages, 4.0 KiB (1000 bytes on the wire) in 5 ms",
        "  round 1: 20 pages, 4.0 KiB (1000 bytes on the wire) in 5 ms",
        "  round 2: 30 pages, 4.0 KiB (1000 bytes on the wire) in 5 ms",
        "move m1: done",
    ]


def test_detail_line_shows_what_the_coordinator_measured():
    model = MoveProgressModel()
    assert model.detail() == ""
    model.update(move(res.MOVE_PHASE_PRE_COPY, 40, round=2, bytes_sent=3 << 20,
                      bytes_remaining=512 << 10, goodput_bytes_per_s=90 << 10,
                      dirty_rate_bytes_per_s=4096, expected_downtime_ms=120,
                      convergence=res.CONVERGENCE_CONVERGING,
                      convergence_reason="delta shrinks"))
    assert model.detail() == (
        "round 2, 3.0 MiB sent, 512.0 KiB left, goodput 90.0 KiB/s, dirty 4.0 KiB/s, "
        "downtime ~120 ms, converging (delta shrinks)")
