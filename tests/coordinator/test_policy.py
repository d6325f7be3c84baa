"""The stop rules and predictions, on measured-looking rounds (no boards)."""

from __future__ import annotations

import pytest

from migrate.coordinator import policy
from migrate.coordinator.policy import Convergence, RoundStats

PAGE = 4096
#: About a 921600-baud UART's page throughput.
RATE = 90_000.0


def rounds_of(*page_counts: int, rate: float = RATE, dirty: float = 20_000.0) -> list[RoundStats]:
    return [RoundStats(i, n, n * PAGE, n * PAGE, n * PAGE / rate, dirty if i else 0.0)
            for i, n in enumerate(page_counts)]


def test_never_stops_after_the_full_round_alone():
    decision = policy.decide(rounds_of(2048))
    assert not decision.stop


def test_qemu_rule_stops_when_the_final_delta_fits_the_budget():
    # 4 pages at 90 KB/s: about 180 ms + fixed costs, within 300 ms.
    decision = policy.decide(rounds_of(2048, 4), max_downtime_ms=300)
    assert decision.stop and decision.rule == "downtime" and not decision.overshoot
    assert decision.expected_downtime_ms <= 300


def test_small_delta_stops_but_reports_the_overshoot():
    # 60 pages would take about 2.7 s: small by P.Haul's count, over a 300 ms budget.
    decision = policy.decide(rounds_of(2048, 200, 60), max_downtime_ms=300)
    assert decision.stop and decision.rule == "small-delta" and decision.overshoot


def test_growing_delta_is_diverging():
    decision = policy.decide(rounds_of(2048, 300, 340), max_downtime_ms=300)
    assert decision.stop and decision.rule == "delta-grew"
    assert decision.convergence is Convergence.DIVERGING
    assert "110 %" in decision.reason


def test_round_cap():
    counts = [2048] + [200] * 7
    decision = policy.decide(rounds_of(*counts), max_downtime_ms=300, max_rounds=8)
    assert decision.stop and decision.rule == "max-rounds"
    assert decision.convergence is Convergence.STALLED


def test_shrinking_deltas_converge_and_continue():
    decision = policy.decide(rounds_of(2048, 800, 400), max_downtime_ms=300)
    assert not decision.stop
    assert decision.convergence is Convergence.CONVERGING


@pytest.mark.parametrize("dirty", [0.0, 1_000.0, 50_000.0])
def test_prediction_of_live_is_never_worse_than_stop_copy(dirty):
    prediction = policy.predict(8 << 20, RATE, dirty, max_downtime_ms=300)
    assert prediction.downtime_ms <= prediction.stop_copy_downtime_ms
    assert prediction.total_ms >= prediction.downtime_ms


def test_prediction_of_a_hot_set_workload():
    # 16 hot pages rewritten continuously: every delta is 16 pages, about 0.7 s.
    prediction = policy.predict(8 << 20, RATE, 16 * PAGE / 0.5, working_set_bytes=16 * PAGE,
                                max_downtime_ms=1000)
    assert prediction.downtime_ms < prediction.stop_copy_downtime_ms / 50
    # Without the working set the model cannot tell it from a component writing everywhere.
    assert policy.predict(8 << 20, RATE, 16 * PAGE / 0.5).downtime_ms > prediction.downtime_ms


def test_no_goodput_no_prediction():
    assert policy.predict(1 << 20, 0.0, 0.0).basis == "no goodput measured yet"


def test_link_model_separates_latency_from_rate():
    rounds = [RoundStats(i, n, n * PAGE, n * PAGE, 0.1 + n * PAGE / RATE, 0.0)
              for i, n in enumerate((2048, 16, 0))]
    model = policy.link_model(rounds)
    assert model.latency_s == pytest.approx(0.1, rel=1e-6)
    assert model.wire_rate == pytest.approx(RATE, rel=1e-6)


def test_expected_downtime_includes_round_latency_and_switchover():
    # A component that wrote nothing: the final round is pure latency.
    rounds = [RoundStats(0, 4, 4 * PAGE, 400, 0.111, 0.0), RoundStats(1, 0, 0, 0, 0.098, 0.0)]
    expected = policy.expected_downtime_ms(rounds, switchover_s=0.1)
    assert 180 <= expected <= 230
    tight = policy.decide(rounds, max_downtime_ms=150, switchover_s=0.1)
    assert tight.stop and tight.rule == "small-delta" and tight.overshoot


def test_compressible_pages_predict_shorter_downtime():
    incompressible = policy.predict(1 << 20, RATE, 0.0, wire_ratio_=1.0)
    compressible = policy.predict(1 << 20, RATE, 0.0, wire_ratio_=0.1)
    assert compressible.stop_copy_downtime_ms < incompressible.stop_copy_downtime_ms / 5
