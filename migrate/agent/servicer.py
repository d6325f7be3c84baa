"""The agent's gRPC servicer: requests in, AgentService calls, protobuf out.

Conversion is ``migrate.convert``'s, error mapping and authorization
``rpc.map_errors``' (by ``ACCESS`` below); nothing else happens here.
"""

from __future__ import annotations

import contextlib

from genode_cr import wire

from .. import convert, errors
from ..rpc import map_errors
from ..security.access import ANY_PEER, AccessPolicy, Allowed
from ..security.identity import COORDINATOR, Identity, Role
from ..v1 import agent_pb2 as apb
from ..v1 import agent_pb2_grpc
from ..v1 import resources_pb2 as rpb
from .service import AgentService

__all__ = ["ACCESS", "AgentServicer", "agent_access"]

_ITS_COORDINATOR = frozenset({Role.COORDINATOR})

#: Who may call what. Whoever may call an agent owns its board (a restore writes
#: memory and capabilities), so everything but GetBoard is for the agent's own
#: coordinator alone (``agent_access`` binds the coordinator role to it); people
#: and scripts go through the coordinator. Health and reflection are open to
#: every peer that passed the TLS handshake.
ACCESS: dict[str, Allowed] = {
    "GetBoard": ANY_PEER,
    "ListComponents": _ITS_COORDINATOR,
    "StartComponent": _ITS_COORDINATOR,
    "PauseComponent": _ITS_COORDINATOR,
    "ResumeComponent": _ITS_COORDINATOR,
    "KillComponent": _ITS_COORDINATOR,
    "StreamLogs": _ITS_COORDINATOR,
    "Checkpoint": _ITS_COORDINATOR,
    "BeginRestore": _ITS_COORDINATOR,
    "StageCheckpoint": _ITS_COORDINATOR,
    "GetStageStatus": _ITS_COORDINATOR,
    "CommitRestore": _ITS_COORDINATOR,
    "AbortRestore": _ITS_COORDINATOR,
}


def agent_access(coordinator: Identity = COORDINATOR) -> AccessPolicy:
    """An agent's policy: ``coordinator`` is the one identity of the coordinator role it
    accepts, and also who a plaintext loopback caller is."""
    return AccessPolicy("AgentService", ACCESS, local=coordinator,
                        bound={Role.COORDINATOR: coordinator})


class AgentServicer(agent_pb2_grpc.AgentServiceServicer):
    def __init__(self, service: AgentService, *, address: str = "",
                 access: AccessPolicy | None = None):
        self.service = service
        self.address = address          # host:port we listen on, for GetBoard
        self.access = access or agent_access()

    def _component(self, info) -> rpb.Component:  # type: ignore[no-untyped-def]
        return convert.component_to_pb(info, self.service.board_name)

    @map_errors
    async def GetBoard(self, request, context):
        status = await self.service.board()
        health = rpb.BOARD_HEALTH_SERVING if status.healthy else rpb.BOARD_HEALTH_NOT_SERVING
        return apb.AgentServiceGetBoardResponse(board=convert.board_to_pb(
            status.info, health=health, detail=status.detail, agent_address=self.address))

    @map_errors
    async def ListComponents(self, request, context):
        components = await self.service.components()
        return apb.AgentServiceListComponentsResponse(
            components=[self._component(c) for c in components])

    @map_errors
    async def StartComponent(self, request, context):
        info = await self.service.start(request.name, request.rom,
                                        ram_quota=request.ram_quota_bytes,
                                        cap_quota=request.cap_quota, config=request.config,
                                        generation=request.generation)
        return apb.AgentServiceStartComponentResponse(component=self._component(info))

    @map_errors
    async def PauseComponent(self, request, context):
        info = await self.service.pause(request.name, generation=request.generation)
        return apb.AgentServicePauseComponentResponse(component=self._component(info))

    @map_errors
    async def ResumeComponent(self, request, context):
        info = await self.service.resume(request.name, generation=request.generation)
        return apb.AgentServiceResumeComponentResponse(component=self._component(info))

    @map_errors
    async def KillComponent(self, request, context):
        await self.service.kill(request.name, generation=request.generation)
        return apb.AgentServiceKillComponentResponse()

    @map_errors
    async def StreamLogs(self, request, context):
        board = self.service.board_name
        async for batch in self.service.logs(request.name, from_index=request.from_index,
                                             follow=request.follow):
            yield convert.log_batch_to_pb(batch, board)

    @map_errors
    async def Checkpoint(self, request, context):
        async for part in self.service.checkpoint(request.name, since_id=request.since_id,
                                                  freeze=request.freeze,
                                                  generation=request.generation,
                                                  resume_id=request.resume_id,
                                                  resume_from_part=request.resume_from_part):
            yield convert.checkpoint_part_to_pb(part)

    @map_errors
    async def BeginRestore(self, request, context):
        session = await self.service.begin_restore(request.name)
        return apb.AgentServiceBeginRestoreResponse(session=session)

    @map_errors
    async def StageCheckpoint(self, request_iterator, context):
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None:
            raise errors.RequestError("an empty StageCheckpoint stream")
        async with contextlib.aclosing(convert.stage_parts_from_pb(first, requests)) as parts:
            done = await self.service.stage(
                first.session, parts, resume_from_part=first.resume_from_part,
                signature=convert.signature_from_pb(first.signature)
                if first.HasField("signature") else None,
                root_digest=first.root_digest)
        return apb.AgentServiceStageCheckpointResponse(rounds=done.rounds,
                                                       pages_written=done.pages_written)

    @map_errors
    async def GetStageStatus(self, request, context):
        status = await self.service.stage_status(request.session)
        return apb.AgentServiceGetStageStatusResponse(
            session=status.session, checkpoint_id=status.checkpoint_id, parts=status.parts,
            last_staged_id=status.last_staged_id, rounds=status.rounds)

    @map_errors
    async def CommitRestore(self, request, context):
        report = await self.service.commit_restore(request.session,
                                                   generation=request.generation)
        return apb.AgentServiceCommitRestoreResponse(
            report=wire.report_to_pb(report),
            component=rpb.Component(name=report.component, board=self.service.board_name,
                                    state="running", threads=report.threads))

    @map_errors
    async def AbortRestore(self, request, context):
        await self.service.abort_restore(request.session)
        return apb.AgentServiceAbortRestoreResponse()
