"""Before a move: the checks it must pass, and what earlier moves predict of it.

Preflight asks both agents for their boards and the source for the component:
both healthy, same arch, kernel and board protocol, the component's ROM on
the target with the same digest, room for its RAM and capabilities, its name
free there. The prediction runs the stop rules over a model of the link
(round latency plus wire bytes at the measured rate) and of the component's
writes, taken from the component's last finished move.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import errors
from ..store import MetadataStore
from ..v1 import resources_pb2 as rpb
from . import policy
from .fleet import Fleet
from .model import Move, MoveOptions, Round

__all__ = ["Known", "Preflight", "history", "round_stats", "run_preflight", "switchover_s"]


class Preflight:
    """The checks a move must pass, with what each found."""

    def __init__(self) -> None:
        self.checks: list[rpb.PreflightCheck] = []

    def check(self, name: str, passed: bool, detail: str) -> bool:
        self.checks.append(rpb.PreflightCheck(name=name, passed=passed, detail=detail))
        return passed

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def failure(self) -> errors.PreflightFailed:
        failed = [c for c in self.checks if not c.passed]
        return errors.PreflightFailed(
            "preflight failed: " + "; ".join(f"{c.name}: {c.detail}" for c in failed),
            metadata={"check": failed[0].name} if failed else {})


async def run_preflight(fleet: Fleet, component: str, source: str, target: str,
                    options: MoveOptions) -> tuple[Preflight, rpb.Component | None,
                                                   rpb.Board | None]:
    if source == target:
        raise errors.RequestError(f"{component} already runs on {source}: source and "
                                  "target are the same board", reason="SAME_BOARD")
    if options.mode not in ("live", "stop-copy"):
        raise errors.RequestError(f"unknown mode {options.mode!r}")
    src_state, dst_state = fleet.board(source), fleet.board(target)
    checks = Preflight()
    boards: dict[str, rpb.Board] = {}
    for state in (src_state, dst_state):
        try:
            board = await state.agent.get_board(timeout=5.0)
        except errors.MigrateError as error:
            checks.check(f"{state.name} healthy", False, str(error))
            continue
        if checks.check(f"{state.name} healthy", board.health == rpb.BOARD_HEALTH_SERVING,
                        board.health_detail or "agent and board link serving"):
            boards[state.name] = board
    if len(boards) < 2:
        return checks, None, None
    src, dst = boards[source], boards[target]
    checks.check("arch", src.arch == dst.arch, f"{src.arch} -> {dst.arch}")
    checks.check("kernel", src.kernel == dst.kernel, f"{src.kernel} -> {dst.kernel}")
    checks.check("protocol", src.protocol_version == dst.protocol_version,
                 f"board protocol {src.protocol_version} -> {dst.protocol_version}")
    comp = await src_state.agent.find(component)
    if comp is None:
        raise errors.NotFound(f"no component {component!r} on {source}",
                              reason="UNKNOWN_COMPONENT")
    checks.check("state", comp.state in ("running", "paused"),
                 f"{component} is {comp.state} on {source}")
    rom_src = next((r for r in src.roms if r.name == comp.rom), None)
    rom_dst = next((r for r in dst.roms if r.name == comp.rom), None)
    if rom_dst is None:
        checks.check("rom", False, f"{target} has no ROM {comp.rom!r}")
    else:
        same = rom_src is not None and rom_src.digest == rom_dst.digest
        checks.check("rom", same, f"ROM {comp.rom!r} " + (
            f"identical (sha256 {rom_dst.digest.hex()[:12]})" if same else
            f"differs: {source} {rom_src.digest.hex()[:12] if rom_src else '?'}, "
            f"{target} {rom_dst.digest.hex()[:12]}"))
    checks.check("ram", dst.ram_free_bytes >= comp.ram_quota_bytes,
                 f"{comp.ram_quota_bytes} bytes needed, {dst.ram_free_bytes} free on {target}")
    checks.check("caps", dst.caps_free >= comp.cap_quota,
                 f"{comp.cap_quota} caps needed, {dst.caps_free} free on {target}")
    clash = await dst_state.agent.find(component)
    checks.check("name", clash is None, f"{target} already runs a {component!r}"
                 if clash else f"{component!r} is free on {target}")
    return checks, comp, src


def history(store: MetadataStore, component: str, source: rpb.Board) -> Known:
    """What the last finished move of the component measured, else the
    source line's rate and nothing known of its writes."""
    for doc in store.list_moves(component=component, limit=20):
        move = Move.from_document(doc)
        if move.phase == "done" and len(move.rounds) >= 1:
            stats = round_stats(move.rounds)
            model = policy.link_model(stats)
            deltas = [r for r in move.rounds if r.index > 0]
            return Known(
                wire_rate=model.wire_rate, latency_s=model.latency_s,
                wire_ratio=policy.wire_ratio(stats) or 1.0,
                dirty_rate=max((r.dirty_rate for r in deltas), default=0),
                working_set=max((r.page_bytes for r in deltas), default=None),
                switchover_s=measured_switchover_s(move),
                basis=f"measured by move {move.id}")
    baud = source.baud or 921600
    # 10 bits a byte on the UART; pages travel compressed, assume none.
    return Known(wire_rate=baud / 10, basis=f"line rate of {baud} baud, dirty rate "
                  "unknown (no earlier move of this component)")

def switchover_s(store: MetadataStore) -> float:
    """Commit and confirm, as the last finished move measured them."""
    for doc in store.list_moves(limit=20):
        move = Move.from_document(doc)
        if move.phase == "done" and move.rounds:
            return measured_switchover_s(move)
    return policy.DEFAULT_SWITCHOVER_S


@dataclass(frozen=True)
class Known:
    """What earlier moves tell about the next one."""
    wire_rate: float
    basis: str
    latency_s: float = policy.DEFAULT_ROUND_LATENCY_S
    wire_ratio: float = 1.0
    dirty_rate: float = 0.0
    working_set: int | None = None
    switchover_s: float = policy.DEFAULT_SWITCHOVER_S


def measured_switchover_s(move: Move) -> float:
    final = move.rounds[-1]
    if not final.final or move.downtime_ms <= final.duration_ms:
        return policy.DEFAULT_SWITCHOVER_S
    return (move.downtime_ms - final.duration_ms) / 1000


def round_stats(rounds: list[Round]) -> list[policy.RoundStats]:
    return [policy.RoundStats(r.index, r.pages, r.page_bytes, r.wire_bytes,
                              r.duration_ms / 1000, r.dirty_rate) for r in rounds]
