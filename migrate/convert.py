"""Protobuf <-> domain for what the agent serves, in one place: boards,
components, log lines and checkpoint parts. The coordinator reuses it for the
same messages on its side of the agent.

Checkpoint parts are genode_cr's own messages (CheckpointStart, PageChunk,
CheckpointEnd) and cross the agent's API as they are: these functions only
put them into, or take them out of, the gRPC envelopes; pages are never
decompressed or recompressed.
"""

from __future__ import annotations

from typing import AsyncIterable, AsyncIterator, Union

from genode_cr.client import LogLine
from genode_cr.model import ComponentInfo
from genode_cr.v1 import board_pb2 as bpb

from . import errors
from .security.signing import Signature
from .v1 import agent_pb2 as apb
from .v1 import resources_pb2 as rpb

__all__ = [
    "CheckpointPart",
    "board_to_pb",
    "checkpoint_part_from_pb",
    "checkpoint_part_to_pb",
    "component_from_pb",
    "component_to_pb",
    "log_batch_to_pb",
    "log_line_to_pb",
    "signature_from_pb",
    "signature_to_pb",
    "stage_parts_from_pb",
    "stage_request",
]

CheckpointPart = Union[bpb.CheckpointStart, bpb.PageChunk, bpb.CheckpointEnd]

_PART_FIELD = {bpb.CheckpointStart: "start", bpb.PageChunk: "pages", bpb.CheckpointEnd: "end"}


def board_to_pb(info: bpb.BoardInfo | None, *,
                health: rpb.BoardHealth.ValueType = rpb.BOARD_HEALTH_SERVING,
                detail: str = "", agent_address: str = "") -> rpb.Board:
    """A board as its hello described it; ``info`` None: nothing known but its health."""
    board = rpb.Board(health=health, health_detail=detail, agent_address=agent_address)
    if info is not None:
        board.name = info.name
        board.protocol_version = info.protocol_version
        board.arch = info.arch
        board.kernel = info.kernel
        board.ram_total_bytes = info.ram_total
        board.ram_free_bytes = info.ram_free
        board.caps_total = info.caps_total
        board.caps_free = info.caps_free
        board.roms.extend(rpb.Rom(name=r.name, digest=r.digest, size_bytes=r.size)
                          for r in info.roms)
        board.board_time_us = info.board_time_us
        board.baud = info.baud
    return board


def component_to_pb(info: ComponentInfo, board: str) -> rpb.Component:
    return rpb.Component(name=info.name, board=board, rom=info.rom, state=info.state,
                         ram_quota_bytes=info.ram_quota, ram_used_bytes=info.ram_used,
                         cap_quota=info.cap_quota, cap_used=info.cap_used,
                         threads=info.threads)


def component_from_pb(message: rpb.Component) -> ComponentInfo:
    return ComponentInfo(message.name, message.rom, message.state, message.ram_quota_bytes,
                         message.ram_used_bytes, message.cap_quota, message.cap_used,
                         message.threads)


def log_line_to_pb(line: LogLine, board: str) -> rpb.LogLine:
    return rpb.LogLine(index=line.index, time_us=line.time_us, text=line.text, board=board)


def log_batch_to_pb(batch: bpb.LogLines, board: str) -> apb.AgentServiceStreamLogsResponse:
    """A batch as the board sent it; each line gets its index in the component's log."""
    first = batch.next_index - len(batch.lines)
    return apb.AgentServiceStreamLogsResponse(
        lines=[rpb.LogLine(index=first + i, time_us=line.time_us, text=line.text, board=board)
               for i, line in enumerate(batch.lines)],
        next_index=batch.next_index)


def checkpoint_part_to_pb(part: CheckpointPart | Signature
                          ) -> apb.AgentServiceCheckpointResponse:
    """A part of an agent's Checkpoint stream, its signature (right after the start) included."""
    if isinstance(part, Signature):
        return apb.AgentServiceCheckpointResponse(signature=signature_to_pb(part))
    return apb.AgentServiceCheckpointResponse(**{_PART_FIELD[type(part)]: part})


def signature_to_pb(signature: Signature) -> rpb.CheckpointSignature:
    return rpb.CheckpointSignature(signer=signature.signer.uri, algorithm=signature.algorithm,
                                   signature=signature.value)


def signature_from_pb(message: rpb.CheckpointSignature) -> Signature | None:
    """None for an empty (absent) signature; CheckpointSignerUnknown for a signer that is
    not an identity URI."""
    if not message.signer and not message.signature and not message.algorithm:
        return None
    return Signature.parse(message.signer, message.algorithm, message.signature)


def checkpoint_part_from_pb(message: apb.AgentServiceCheckpointResponse
                            | apb.AgentServiceStageCheckpointRequest) -> CheckpointPart:
    """The part a Checkpoint response or a StageCheckpoint request carries."""
    field = message.WhichOneof("part")
    if field is None:
        raise errors.RequestError("a checkpoint message without a part (start, pages or end)")
    return getattr(message, field)


def stage_request(session: int, part: CheckpointPart) -> apb.AgentServiceStageCheckpointRequest:
    return apb.AgentServiceStageCheckpointRequest(session=session,
                                                  **{_PART_FIELD[type(part)]: part})


async def stage_parts_from_pb(first: apb.AgentServiceStageCheckpointRequest,
                              rest: AsyncIterable[apb.AgentServiceStageCheckpointRequest]
                              ) -> AsyncIterator[CheckpointPart]:
    """The parts of a StageCheckpoint stream whose first request was ``first``, as they come.

    Every request must name the first one's session and carry a part;
    RequestError otherwise (the order of the parts is the service's to check).
    """
    yield checkpoint_part_from_pb(first)
    async for request in rest:
        if request.session != first.session:
            raise errors.RequestError(f"a StageCheckpoint stream names session {first.session} "
                                      f"and then {request.session}")
        yield checkpoint_part_from_pb(request)
