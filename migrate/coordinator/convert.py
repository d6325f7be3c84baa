"""Protobuf <-> domain for the coordinator's resources, in one place."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from .. import errors, limits
from ..convert import signature_to_pb
from ..store import CheckpointMeta
from ..store.audit import AuditEvent
from ..v1 import coordinator_pb2 as cpb
from ..v1 import resources_pb2 as rpb
from .model import Move, MoveOptions

__all__ = ["audit_event_to_pb", "checkpoint_to_pb", "move_to_pb", "options_from_pb",
           "PHASE_TO_PB"]

PHASE_TO_PB = {
    "pending": rpb.MOVE_PHASE_PENDING,
    "preflight": rpb.MOVE_PHASE_PREFLIGHT,
    "pre_copy": rpb.MOVE_PHASE_PRE_COPY,
    "stop_and_copy": rpb.MOVE_PHASE_STOP_AND_COPY,
    "commit": rpb.MOVE_PHASE_COMMIT,
    "confirm": rpb.MOVE_PHASE_CONFIRM,
    "done": rpb.MOVE_PHASE_DONE,
    "failed": rpb.MOVE_PHASE_FAILED,
    "rolled_back": rpb.MOVE_PHASE_ROLLED_BACK,
    "cancelled": rpb.MOVE_PHASE_CANCELLED,
}
_MODE_TO_PB = {"live": rpb.MOVE_MODE_LIVE, "stop-copy": rpb.MOVE_MODE_STOP_COPY}
_OVERSHOOT_TO_PB = {"abort": rpb.OVERSHOOT_POLICY_ABORT, "accept": rpb.OVERSHOOT_POLICY_ACCEPT}
_CONVERGENCE_TO_PB = {
    "converging": rpb.CONVERGENCE_CONVERGING,
    "stalled": rpb.CONVERGENCE_STALLED,
    "diverging": rpb.CONVERGENCE_DIVERGING,
}

#: Bounds on what a caller may ask for (named in migrate.limits).
MAX_DOWNTIME_LIMIT_MS = limits.MAX_DOWNTIME_MS
MAX_ROUNDS_LIMIT = limits.MAX_ROUNDS
MAX_LINK_GRACE_MS = limits.MAX_LINK_GRACE_MS


def _timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def options_from_pb(message: rpb.MoveOptions, defaults: MoveOptions) -> MoveOptions:
    """The caller's options; what it left unset comes from the coordinator's defaults."""
    if message.mode not in (rpb.MOVE_MODE_UNSPECIFIED, *_MODE_TO_PB.values()):
        raise errors.RequestError(f"unknown move mode {message.mode}")
    if message.on_overshoot not in (rpb.OVERSHOOT_POLICY_UNSPECIFIED, *_OVERSHOOT_TO_PB.values()):
        raise errors.RequestError(f"unknown overshoot policy {message.on_overshoot}")
    if message.max_downtime_ms > MAX_DOWNTIME_LIMIT_MS:
        raise errors.RequestError(f"max_downtime_ms above {MAX_DOWNTIME_LIMIT_MS}")
    if message.max_rounds > MAX_ROUNDS_LIMIT:
        raise errors.RequestError(f"max_rounds above {MAX_ROUNDS_LIMIT}")
    if message.link_grace_ms > MAX_LINK_GRACE_MS:
        raise errors.RequestError(f"link_grace_ms above {MAX_LINK_GRACE_MS}")
    return MoveOptions(
        mode="stop-copy" if message.mode == rpb.MOVE_MODE_STOP_COPY else "live",
        max_downtime_ms=message.max_downtime_ms or defaults.max_downtime_ms,
        on_overshoot=defaults.on_overshoot
        if message.on_overshoot == rpb.OVERSHOOT_POLICY_UNSPECIFIED
        else "accept" if message.on_overshoot == rpb.OVERSHOOT_POLICY_ACCEPT else "abort",
        link_grace_s=message.link_grace_ms / 1000 if message.link_grace_ms
        else defaults.link_grace_s,
        max_rounds=message.max_rounds or defaults.max_rounds,
    )


def options_to_pb(options: MoveOptions) -> rpb.MoveOptions:
    return rpb.MoveOptions(mode=_MODE_TO_PB[options.mode],
                           max_downtime_ms=options.max_downtime_ms,
                           on_overshoot=_OVERSHOOT_TO_PB[options.on_overshoot],
                           link_grace_ms=int(options.link_grace_s * 1000),
                           max_rounds=options.max_rounds)


def move_to_pb(move: Move) -> rpb.Move:
    p = move.progress
    message = rpb.Move(
        id=move.id, component=move.component, source_board=move.source,
        target_board=move.target, options=options_to_pb(move.options),
        phase=PHASE_TO_PB[move.phase],
        transitions=[rpb.PhaseTransition(phase=PHASE_TO_PB[phase], time=_timestamp(at))
                     for phase, at in move.transitions],
        progress=rpb.MoveProgress(
            round=p.round, bytes_sent=p.bytes_sent, bytes_remaining=p.bytes_remaining,
            goodput_bytes_per_s=p.goodput, dirty_rate_bytes_per_s=p.dirty_rate,
            expected_downtime_ms=p.expected_downtime_ms,
            convergence=_CONVERGENCE_TO_PB.get(p.convergence, rpb.CONVERGENCE_UNSPECIFIED),
            convergence_reason=p.convergence_reason, percent=p.percent),
        rounds=[rpb.MoveRound(index=r.index, final=r.final, pages=r.pages,
                              page_bytes=r.page_bytes, wire_bytes=r.wire_bytes,
                              duration_ms=r.duration_ms, dirty_rate_bytes_per_s=r.dirty_rate,
                              checkpoint_id=r.checkpoint_id, resumes=r.resumes)
                for r in move.rounds],
        stop_rule=move.stop_rule, predicted_downtime_ms=move.predicted_downtime_ms,
        downtime_ms=move.downtime_ms, total_ms=move.total_ms,
        cancel_requested=move.cancel_requested, create_time=_timestamp(move.created),
        update_time=_timestamp(move.updated), generation=move.generation, note=move.note)
    if move.error_reason:
        message.error.CopyFrom(rpb.MoveError(reason=move.error_reason,
                                             message=move.error_message))
    return message


def checkpoint_to_pb(meta: CheckpointMeta) -> rpb.StoredCheckpoint:
    return rpb.StoredCheckpoint(
        id=meta.id, component=meta.component, board=meta.board, parent_id=meta.parent_id,
        sequence=meta.sequence, create_time=_timestamp(meta.created), pages=meta.pages,
        page_bytes=meta.page_bytes, stored_bytes=meta.stored_bytes,
        root_digest=meta.root_digest, rom=meta.rom, frozen=meta.frozen,
        signatures=[signature_to_pb(s) for s in meta.signatures])


def audit_event_to_pb(event: AuditEvent) -> cpb.AuditEvent:
    time = Timestamp()
    time.FromMicroseconds(event.time_us)
    return cpb.AuditEvent(seq=event.seq, time=time, identity=event.identity, peer=event.peer,
                          method=event.method, arguments=event.arguments,
                          outcome=event.outcome, detail=event.detail,
                          resource=event.resource, hash=event.hash)
