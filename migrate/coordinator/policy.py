"""When to stop pre-copying, and what a move will cost: pure functions of the
rounds measured so far, so they can be tested without boards.

The rules are the anchors' (see docs/api.md, "Stop rules"):

- ``downtime`` (QEMU): the bytes the final round will carry, sent at the
  measured goodput, fit within the downtime budget.
- ``small-delta`` (P.Haul): the last round carried at most 64 pages.
- ``delta-grew`` (P.Haul): a round carried more than 10 % more than the one
  before it: copying is losing against the component's writes.
- ``max-rounds`` (P.Haul): eight rounds.

Only the first meets the budget by construction; for the others the final
round's predicted downtime is checked against it, and an overshoot aborts the
move or is accepted, as the caller chose.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "Convergence",
    "DEFAULT_MAX_DOWNTIME_MS",
    "DEFAULT_MAX_ROUNDS",
    "Decision",
    "RoundStats",
    "SMALL_DELTA_PAGES",
    "assess",
    "decide",
    "predict",
    "Prediction",
    "LinkModel",
    "link_model",
    "expected_downtime_ms",
]

#: QEMU's default downtime-limit.
DEFAULT_MAX_DOWNTIME_MS = 300
#: P.Haul's iteration cap (phaul/iters.py: phaul_iter_max).
DEFAULT_MAX_ROUNDS = 8
#: P.Haul's "delta is small enough" threshold, in pages (phaul_iter_min_size).
SMALL_DELTA_PAGES = 64
#: P.Haul's growth limit: a pass more than 10 % larger than the one before.
GROWTH_LIMIT = 1.10
#: Until a move has measured them: what a round costs whatever its size
#: (requests crossing both UARTs, the capture, the stage), and what the
#: switch-over after the final round costs (commit, start, confirm).
DEFAULT_ROUND_LATENCY_S = 0.1
DEFAULT_SWITCHOVER_S = 0.1


class Convergence(Enum):
    CONVERGING = "converging"
    STALLED = "stalled"
    DIVERGING = "diverging"


@dataclass(frozen=True)
class RoundStats:
    index: int
    pages: int
    page_bytes: int
    wire_bytes: int
    duration_s: float
    #: page bytes the component wrote per second while the round before ran
    dirty_rate: float


@dataclass(frozen=True)
class Decision:
    stop: bool
    rule: str = ""               # which rule fired
    overshoot: bool = False      # stopping now misses the downtime budget
    expected_downtime_ms: int = 0
    convergence: Convergence = Convergence.CONVERGING
    reason: str = ""


def goodput(rounds: list[RoundStats]) -> float:
    """Page bytes per second over the rounds so far (compression included)."""
    seconds = sum(r.duration_s for r in rounds)
    return sum(r.page_bytes for r in rounds) / seconds if seconds > 0 else 0.0


def wire_ratio(rounds: list[RoundStats]) -> float:
    """Wire bytes per page byte: how well the pages compress."""
    raw = sum(r.page_bytes for r in rounds)
    return sum(r.wire_bytes for r in rounds) / raw if raw else 1.0


@dataclass(frozen=True)
class LinkModel:
    """A round takes ``latency_s`` plus its wire bytes at ``wire_rate``."""
    wire_rate: float
    latency_s: float

    def seconds(self, wire_bytes: float) -> float:
        return self.latency_s + (wire_bytes / self.wire_rate if self.wire_rate else 0.0)


def link_model(rounds: list[RoundStats]) -> LinkModel:
    """Fits duration = latency + wire bytes / rate over the rounds (least
    squares); with too little spread in their sizes, the largest round's rate
    and the default latency."""
    if len({r.wire_bytes for r in rounds}) >= 2:
        n = len(rounds)
        mean_w = sum(r.wire_bytes for r in rounds) / n
        mean_d = sum(r.duration_s for r in rounds) / n
        sxx = sum((r.wire_bytes - mean_w) ** 2 for r in rounds)
        sxy = sum((r.wire_bytes - mean_w) * (r.duration_s - mean_d) for r in rounds)
        if sxx > 0 and sxy > 0:
            per_byte = sxy / sxx
            latency = mean_d - per_byte * mean_w
            if latency >= 0:
                return LinkModel(1 / per_byte, latency)
    largest = max(rounds, key=lambda r: r.wire_bytes)
    rate = largest.wire_bytes / largest.duration_s if largest.duration_s > 0 else 0.0
    return LinkModel(rate, DEFAULT_ROUND_LATENCY_S)


def expected_final_bytes(rounds: list[RoundStats]) -> int:
    """The page bytes the final round would carry if taken now: as QEMU does,
    what was dirty at the last sync, i.e. what the last incremental round
    carried. After the full round alone nothing is known yet: all of it."""
    return rounds[-1].page_bytes


def expected_downtime_ms(rounds: list[RoundStats], switchover_s: float) -> int:
    """Freeze to running on the target: the final round at the measured link,
    then the switch-over."""
    model = link_model(rounds)
    if model.wire_rate <= 0 and expected_final_bytes(rounds):
        return 2**31 - 1
    final_wire = expected_final_bytes(rounds) * wire_ratio(rounds)
    return int((model.seconds(final_wire) + switchover_s) * 1000)


def assess(rounds: list[RoundStats]) -> tuple[Convergence, str]:
    """Is pre-copy getting anywhere? Compares the last two incremental rounds."""
    deltas = [r for r in rounds if r.index > 0]
    if len(deltas) < 2:
        return Convergence.CONVERGING, "first rounds"
    before, last = deltas[-2].page_bytes, deltas[-1].page_bytes
    if last > before * GROWTH_LIMIT:
        return Convergence.DIVERGING, (f"round {deltas[-1].index} carried {last} bytes, "
                                       f"more than 110 % of the {before} before it")
    if last >= before * 0.95:
        return Convergence.STALLED, (f"rounds carry about {last} bytes each: the component "
                                     "rewrites its working set as fast as it is copied")
    return Convergence.CONVERGING, f"delta shrank from {before} to {last} bytes"


def decide(rounds: list[RoundStats], *, max_downtime_ms: int = DEFAULT_MAX_DOWNTIME_MS,
           max_rounds: int = DEFAULT_MAX_ROUNDS,
           switchover_s: float = DEFAULT_SWITCHOVER_S) -> Decision:
    """After a round: copy another, or freeze and send the final delta."""
    expected = expected_downtime_ms(rounds, switchover_s)
    convergence, reason = assess(rounds)
    last = rounds[-1]

    def stop(rule: str) -> Decision:
        return Decision(True, rule, expected > max_downtime_ms, expected, convergence, reason)

    if last.index > 0 and expected <= max_downtime_ms:
        return stop("downtime")
    if last.index > 0 and last.pages <= SMALL_DELTA_PAGES:
        return stop("small-delta")
    if convergence is Convergence.DIVERGING:
        return stop("delta-grew")
    if len(rounds) >= max_rounds:
        return stop("max-rounds")
    return Decision(False, "", False, expected, convergence, reason)


@dataclass(frozen=True)
class Prediction:
    total_ms: int
    downtime_ms: int
    stop_copy_downtime_ms: int
    basis: str


def predict(ram_bytes: int, wire_rate: float, dirty_rate_bps: float, *,
            working_set_bytes: int | None = None, wire_ratio_: float = 1.0,
            latency_s: float = DEFAULT_ROUND_LATENCY_S,
            switchover_s: float = DEFAULT_SWITCHOVER_S,
            max_downtime_ms: int = DEFAULT_MAX_DOWNTIME_MS,
            max_rounds: int = DEFAULT_MAX_ROUNDS) -> Prediction:
    """A dry run of the rounds: the first carries the whole RAM, each later one
    what was written during the one before, which a component that rewrites
    a hot set caps at that set (``working_set_bytes``). Rounds cost
    ``latency_s`` plus their compressed bytes at ``wire_rate``."""
    if wire_rate <= 0:
        return Prediction(0, 0, 0, "no goodput measured yet")
    model = LinkModel(wire_rate, latency_s)
    rounds: list[RoundStats] = []
    size = float(ram_bytes)
    for index in range(max_rounds):
        wire = size * wire_ratio_
        rounds.append(RoundStats(index, int(size // 4096), int(size), int(wire),
                                 model.seconds(wire), dirty_rate_bps))
        if decide(rounds, max_downtime_ms=max_downtime_ms, max_rounds=max_rounds,
                  switchover_s=switchover_s).stop:
            break
        size = min(float(ram_bytes), float(working_set_bytes or ram_bytes),
                   dirty_rate_bps * rounds[-1].duration_s)
    final = expected_final_bytes(rounds) * wire_ratio_
    downtime = int((model.seconds(final) + switchover_s) * 1000)
    stop_copy = int((model.seconds(ram_bytes * wire_ratio_) + switchover_s) * 1000)
    total = int(sum(r.duration_s for r in rounds) * 1000) + downtime
    return Prediction(total, downtime, stop_copy,
                      f"{ram_bytes} bytes, {wire_ratio_:.2f} of it on the wire at "
                      f"{wire_rate:.0f} B/s plus {latency_s * 1000:.0f} ms a round; component "
                      f"writes {dirty_rate_bps:.0f} B/s")
