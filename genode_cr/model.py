"""What the board and the agent side both speak of: components and restore reports.

These plain records cross the board link (``wire`` converts them) and must be
importable without the emulator: an agent next to a real board never loads
genode_cr.emu, so they live here and the emulator re-exports them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = ["ComponentInfo", "RestoreReport", "Translation"]


@dataclass(frozen=True)
class ComponentInfo:
    name: str
    rom: str
    state: str
    ram_quota: int
    ram_used: int
    cap_quota: int
    cap_used: int
    threads: int


@dataclass(frozen=True)
class Translation:
    kind: str
    old_badge: int
    new_badge: int
    kcap: int


@dataclass
class RestoreReport:
    component: str
    checkpoint_id: str
    chain_length: int
    translations: list[Translation] = field(default_factory=list)
    caps_installed: int = 0
    cap_map_entries_translated: int = 0
    cap_map_entries_unknown: int = 0
    parent_cap_rewritten: bool = False
    dataspaces: int = 0
    pages_written: int = 0
    bytes_written: int = 0
    threads: int = 0
    irqs_rebound: int = 0
    rpc_gates: int = 0
    timers_rearmed: int = 0
    rounds: int = 0
    steps: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)
