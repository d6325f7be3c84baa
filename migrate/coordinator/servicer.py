"""The coordinator's gRPC servicer: requests in, domain calls, protobuf out.
Errors are mapped, callers authorized (by ``ACCESS`` below), requests bounded
and calls audited (``auditor``) by ``rpc.map_errors``; nothing else happens here."""

from __future__ import annotations

import grpc

from .. import errors, limits
from ..rpc import map_errors
from ..security.access import OPERATORS, READERS, AccessPolicy, Allowed
from ..security.audit import Auditor
from ..store.audit import AuditLog
from ..security.identity import LOCAL_OPERATOR, Identity
from ..v1 import coordinator_pb2 as cpb
from ..v1 import coordinator_pb2_grpc
from . import convert
from .model import MoveOptions
from .moves import MoveEngine
from .service import CoordinatorService

__all__ = ["ACCESS", "CoordinatorServicer", "coordinator_access"]

#: Who may call what: viewers read, operators also change the fleet. Agents and
#: other coordinators call nothing here.
ACCESS: dict[str, Allowed] = {
    "ListBoards": READERS,
    "ListComponents": READERS,
    "StartComponent": OPERATORS,
    "KillComponent": OPERATORS,
    "StreamLogs": READERS,
    "PlanMove": READERS,
    "CreateMove": OPERATORS,
    "GetMove": READERS,
    "ListMoves": READERS,
    "WatchMove": READERS,
    "CancelMove": OPERATORS,
    "CreateCheckpoint": OPERATORS,
    "ListCheckpoints": READERS,
    "GetCheckpoint": READERS,
    "VerifyCheckpoint": READERS,
    "DeleteCheckpoint": OPERATORS,
    "RestoreCheckpoint": OPERATORS,
    # Who did what is as readable as what there is: viewers include auditors.
    "ListAuditEvents": READERS,
    "VerifyAuditLog": READERS,
}


def coordinator_access(local: Identity = LOCAL_OPERATOR) -> AccessPolicy:
    """The coordinator's policy; ``local``: who a plaintext loopback caller is."""
    return AccessPolicy("CoordinatorService", ACCESS, local=local)

DEFAULT_PAGE_SIZE = 50


def _page_size(requested: int) -> int:
    # Larger ones are refused at the edge (limits.MAX_PAGE_SIZE).
    return min(requested or DEFAULT_PAGE_SIZE, limits.MAX_PAGE_SIZE)


def _required(value: str, what: str) -> str:
    """Present; its length and characters are checked at the edge (migrate.limits)."""
    if not value:
        raise errors.RequestError(f"{what} is required")
    return limits.check_name(value, what, bound=limits.MAX_ID_LENGTH,
                             bound_name="MAX_ID_LENGTH")


class CoordinatorServicer(coordinator_pb2_grpc.CoordinatorServiceServicer):
    def __init__(self, service: CoordinatorService, engine: MoveEngine,
                 move_defaults: MoveOptions | None = None, *,
                 access: AccessPolicy | None = None, audit_log: AuditLog | None = None):
        self.service = service
        self.engine = engine
        self.move_defaults = move_defaults or MoveOptions()
        self.access = access or coordinator_access()
        self.audit_log = audit_log
        #: What rpc.map_errors records every state-changing and refused call with.
        self.auditor = Auditor(audit_log, self.access) if audit_log is not None else None

    def _options(self, message) -> MoveOptions:
        return convert.options_from_pb(message, self.move_defaults)

    # --- boards and components --------------------------------------------------------

    @map_errors
    async def ListBoards(self, request, context):
        return cpb.ListBoardsResponse(boards=self.service.boards())

    @map_errors
    async def ListComponents(self, request, context):
        components, unreachable = await self.service.components(request.board)
        return cpb.ListComponentsResponse(components=components, unreachable_boards=unreachable)

    @map_errors
    async def StartComponent(self, request, context):
        component = await self.service.start(
            _required(request.name, "name"), request.rom, _required(request.board, "board"),
            ram_quota=request.ram_quota_bytes, cap_quota=request.cap_quota,
            config=request.config)
        return cpb.StartComponentResponse(component=component)

    @map_errors
    async def KillComponent(self, request, context):
        await self.service.kill(_required(request.name, "name"))
        return cpb.KillComponentResponse()

    @map_errors
    async def StreamLogs(self, request, context):
        async for line in self.service.logs(_required(request.name, "name"),
                                            follow=request.follow, tail=request.tail):
            yield cpb.StreamLogsResponse(lines=[line])

    # --- moves ------------------------------------------------------------------------

    @map_errors
    async def PlanMove(self, request, context):
        plan = await self.engine.plan(_required(request.component, "component"),
                                      request.source_board,
                                      _required(request.target_board, "target_board"),
                                      self._options(request.options))
        return cpb.PlanMoveResponse(plan=plan)

    @map_errors
    async def CreateMove(self, request, context):
        move = await self.engine.create(_required(request.component, "component"),
                                        request.source_board,
                                        _required(request.target_board, "target_board"),
                                        self._options(request.options))
        return cpb.CreateMoveResponse(move=convert.move_to_pb(move))

    @map_errors
    async def GetMove(self, request, context):
        return cpb.GetMoveResponse(move=convert.move_to_pb(
            self.engine.get(_required(request.id, "id"))))

    @map_errors
    async def ListMoves(self, request, context):
        size = _page_size(request.page_size)
        moves = self.engine.list(component=request.component or None, limit=size + 1,
                                 before=request.page_token or None)
        page, more = moves[:size], len(moves) > size
        return cpb.ListMovesResponse(moves=[convert.move_to_pb(m) for m in page],
                                     next_page_token=page[-1].id if more else "")

    @map_errors
    async def WatchMove(self, request, context):
        async for move in self.engine.watch(_required(request.id, "id")):
            yield cpb.WatchMoveResponse(move=convert.move_to_pb(move))

    @map_errors
    async def CancelMove(self, request, context):
        move = await self.engine.cancel(_required(request.id, "id"))
        return cpb.CancelMoveResponse(move=convert.move_to_pb(move))

    # --- checkpoints ------------------------------------------------------------------

    @map_errors
    async def CreateCheckpoint(self, request, context):
        meta = await self.service.create_checkpoint(_required(request.component, "component"),
                                                    full=request.full)
        return cpb.CreateCheckpointResponse(checkpoint=convert.checkpoint_to_pb(meta))

    @map_errors
    async def ListCheckpoints(self, request, context):
        size = _page_size(request.page_size)
        metas = self.service.list_checkpoints(request.component, limit=size + 1,
                                              before=request.page_token or None)
        page, more = metas[:size], len(metas) > size
        return cpb.ListCheckpointsResponse(
            checkpoints=[convert.checkpoint_to_pb(m) for m in page],
            next_page_token=page[-1].id if more else "")

    @map_errors
    async def GetCheckpoint(self, request, context):
        meta, manifest = self.service.get_checkpoint(_required(request.id, "id"))
        return cpb.GetCheckpointResponse(checkpoint=convert.checkpoint_to_pb(meta),
                                         manifest=manifest)

    @map_errors
    async def VerifyCheckpoint(self, request, context):
        result = await self.service.verify_checkpoint(_required(request.id, "id"))
        return cpb.VerifyCheckpointResponse(ok=result.ok, detail=result.detail,
                                            chain_length=result.chain_length,
                                            pages_checked=result.pages_checked)

    @map_errors
    async def DeleteCheckpoint(self, request, context):
        deleted, freed = await self.service.delete_checkpoint(_required(request.id, "id"))
        return cpb.DeleteCheckpointResponse(deleted=len(deleted), freed_bytes=freed)

    @map_errors
    async def RestoreCheckpoint(self, request, context):
        component, report = await self.service.restore_checkpoint(
            _required(request.id, "id"), _required(request.target_board, "target_board"),
            request.name)
        return cpb.RestoreCheckpointResponse(component=component, report=report)

    # --- the audit log ----------------------------------------------------------------

    def _audit_log(self) -> AuditLog:
        if self.audit_log is None:
            raise errors.PreconditionFailed("this coordinator keeps no audit log")
        return self.audit_log

    @map_errors
    async def ListAuditEvents(self, request, context):
        size = _page_size(request.page_size)
        before = None
        if request.page_token:
            if not request.page_token.isdigit():
                raise errors.RequestError(f"page token {request.page_token!r} is not one "
                                          "this call returned")
            before = int(request.page_token)
        since = None
        if request.HasField("since"):
            if not 0 <= request.since.nanos < 1_000_000_000:
                raise errors.RequestError("since: nanos must be 0..999999999")
            since = request.since.seconds + request.since.nanos / 1e9
        events = self._audit_log().list(identity=request.identity, method=request.method,
                                        since=since, limit=size + 1, before_seq=before)
        page, more = events[:size], len(events) > size
        return cpb.ListAuditEventsResponse(
            events=[convert.audit_event_to_pb(e) for e in page],
            next_page_token=str(page[-1].seq) if more else "")

    @map_errors
    async def VerifyAuditLog(self, request, context):
        result = self._audit_log().verify()
        return cpb.VerifyAuditLogResponse(
            ok=result.ok, events=result.events, first_broken_seq=result.first_broken_seq,
            detail=result.detail, head_seq=result.head_seq, head_hash=result.head_hash)


_ = grpc  # servicer methods receive grpc.aio.ServicerContext
