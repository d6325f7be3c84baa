"""A move as the coordinator keeps it: what was asked, where it stands, what
each round cost, and the few facts a restarted coordinator needs to finish it
or roll it back (the target's restore session, whether the source was frozen,
whether the commit was sent). Stored as a JSON document, journalled at every
phase change.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from .policy import DEFAULT_MAX_DOWNTIME_MS, DEFAULT_MAX_ROUNDS

__all__ = ["Move", "MoveOptions", "Progress", "Round", "TERMINAL_PHASES", "PHASES"]

PHASES = ("pending", "preflight", "pre_copy", "stop_and_copy", "commit", "confirm",
          "done", "failed", "rolled_back", "cancelled")
TERMINAL_PHASES = frozenset({"done", "failed", "rolled_back", "cancelled"})


@dataclass
class MoveOptions:
    mode: str = "live"                 # live | stop-copy
    max_downtime_ms: int = DEFAULT_MAX_DOWNTIME_MS
    on_overshoot: str = "abort"        # abort | accept
    link_grace_s: float = 10.0
    max_rounds: int = DEFAULT_MAX_ROUNDS


@dataclass
class Round:
    index: int
    final: bool
    pages: int
    page_bytes: int
    wire_bytes: int
    duration_ms: int
    dirty_rate: int                    # page bytes per second written before this round
    checkpoint_id: str
    resumes: int = 0                   # streams that broke and went on where they stopped


@dataclass
class Progress:
    round: int = 0
    bytes_sent: int = 0
    bytes_remaining: int = 0
    goodput: int = 0
    dirty_rate: int = 0
    expected_downtime_ms: int = 0
    convergence: str = "converging"
    convergence_reason: str = ""
    percent: float = 0.0


@dataclass
class Move:
    id: str
    component: str
    source: str
    target: str
    options: MoveOptions = field(default_factory=MoveOptions)
    phase: str = "pending"
    transitions: list[tuple[str, float]] = field(default_factory=list)
    progress: Progress = field(default_factory=Progress)
    rounds: list[Round] = field(default_factory=list)
    stop_rule: str = ""
    predicted_downtime_ms: int = 0
    downtime_ms: int = 0
    total_ms: int = 0
    error_reason: str = ""
    error_message: str = ""
    cancel_requested: bool = False
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    generation: int = 0                # the component's ownership generation before the move
    note: str = ""
    # What recovery needs.
    target_session: int = 0
    source_frozen: bool = False
    commit_sent: bool = False

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL_PHASES

    def enter(self, phase: str) -> None:
        assert phase in PHASES, phase
        now = time.time()
        self.phase = phase
        self.transitions.append((phase, now))
        self.updated = now

    def to_document(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Move:
        doc = dict(doc)
        doc["options"] = MoveOptions(**doc.get("options", {}))
        doc["progress"] = Progress(**doc.get("progress", {}))
        doc["rounds"] = [Round(**r) for r in doc.get("rounds", [])]
        doc["transitions"] = [tuple(t) for t in doc.get("transitions", [])]
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})
