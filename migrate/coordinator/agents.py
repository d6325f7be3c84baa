"""The coordinator's view of one board's agent: its gRPC calls as coroutines
that return protobuf resources and raise our errors, each with a deadline.

Every agent is reached over mutual TLS with the coordinator's certificate
when the coordinator has one, and the handshake checks that the agent proves
the identity its board is configured with; otherwise in plaintext (loopback
only, checked by the configuration).

Streams are explicit: ``checkpoint`` yields the parts exactly as the source
agent sent them, and ``open_stage`` returns a writer for the target agent's
client stream, so a move forwards page chunks one by one and never holds a
whole checkpoint.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from genode_cr.v1 import board_pb2 as bpb

from .. import convert, errors, rpc
from ..security.identity import Identity, Role
from ..security.signing import Signature
from ..security.tls import TlsConfig, channel_credentials, target_name_options
from ..v1 import agent_pb2 as apb
from ..v1 import agent_pb2_grpc
from ..v1 import resources_pb2 as rpb

__all__ = ["AgentClient", "StageWriter", "CheckpointPart"]

CheckpointPart = bpb.CheckpointStart | bpb.PageChunk | bpb.CheckpointEnd

#: A unary call that takes longer than this is an agent in trouble.
CALL_TIMEOUT = 30.0
#: Idle limit of a stream: a chunk takes well under a second at 921600 baud.
STREAM_IDLE_TIMEOUT = 60.0


class StageWriter:
    """One checkpoint being staged on the target: ``write`` parts, then ``finish``."""

    def __init__(self, call: grpc.aio.StreamUnaryCall, session: int, board: str,
                 resume_from_part: int = 0, signature: Signature | None = None,
                 root_digest: bytes = b""):
        self._call = call
        self._session = session
        self._board = board
        self._resume_from_part = resume_from_part
        self._signature = signature
        self._root_digest = root_digest

    async def write(self, part: CheckpointPart) -> None:
        request = apb.AgentServiceStageCheckpointRequest(
            session=self._session, resume_from_part=self._resume_from_part)
        self._resume_from_part = 0          # only the first message of a stream says it
        if isinstance(part, bpb.CheckpointStart):
            request.start.CopyFrom(part)
            # What the agent verifies before the start reaches its board.
            if self._signature is not None:
                request.signature.CopyFrom(convert.signature_to_pb(self._signature))
            request.root_digest = self._root_digest
        elif isinstance(part, bpb.PageChunk):
            request.pages.CopyFrom(part)
        else:
            request.end.CopyFrom(part)
        with rpc.client_errors(f"agent of {self._board}"):
            try:
                await self._call.write(request)
            except (asyncio.InvalidStateError, grpc.aio.UsageError):
                # The call already ended: its status says why.
                await self._call
                raise errors.Unavailable(f"agent of {self._board} ended the stage stream "
                                         "early") from None

    async def finish(self) -> apb.AgentServiceStageCheckpointResponse:
        with rpc.client_errors(f"agent of {self._board}"):
            await self._call.done_writing()
            return await self._call

    def cancel(self) -> None:
        self._call.cancel()


class AgentClient:
    """``tls``: the coordinator's own certificate, presented to the agent; ``identity``:
    what the agent must prove (default agent/<board>). Without ``tls``, plaintext."""

    def __init__(self, board: str, address: str, *, timeout: float = CALL_TIMEOUT,
                 tls: TlsConfig | None = None, identity: Identity | None = None):
        self.board = board
        self.address = address
        self.timeout = timeout
        self.identity = identity
        if tls is not None:
            self.identity = identity or Identity(Role.AGENT, board)
            self._channel = grpc.aio.secure_channel(
                address, channel_credentials(tls),
                options=rpc.CHANNEL_OPTIONS + target_name_options(self.identity))
            self._target = f"agent of {board} at {address} ({self.identity})"
        else:
            self._channel = grpc.aio.insecure_channel(address, options=rpc.CHANNEL_OPTIONS)
            self._target = f"agent of {board} at {address}"
        self._stub = agent_pb2_grpc.AgentServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def __repr__(self) -> str:
        return f"<AgentClient {self.board} {self.address}>"

    async def close(self) -> None:
        await self._channel.close()

    def _errors(self):  # type: ignore[no-untyped-def]
        return rpc.client_errors(self._target)

    # --- board and components -------------------------------------------------------

    async def health(self, timeout: float = 5.0) -> int:
        """The agent's overall health status (SERVING, NOT_SERVING); Unavailable if silent."""
        with self._errors():
            reply = await self._health.Check(health_pb2.HealthCheckRequest(service=""),
                                             timeout=timeout)
        return reply.status

    async def get_board(self, timeout: float | None = None) -> rpb.Board:
        with self._errors():
            reply = await self._stub.GetBoard(apb.AgentServiceGetBoardRequest(),
                                              timeout=timeout or self.timeout)
        return reply.board

    async def components(self) -> list[rpb.Component]:
        with self._errors():
            reply = await self._stub.ListComponents(apb.AgentServiceListComponentsRequest(),
                                                    timeout=self.timeout)
        return list(reply.components)

    async def find(self, name: str) -> rpb.Component | None:
        return next((c for c in await self.components() if c.name == name), None)

    async def start(self, name: str, rom: str = "", *, ram_quota: int = 0, cap_quota: int = 0,
                    config: str = "", generation: int = 0) -> rpb.Component:
        with self._errors():
            reply = await self._stub.StartComponent(apb.AgentServiceStartComponentRequest(
                name=name, rom=rom, ram_quota_bytes=ram_quota, cap_quota=cap_quota,
                config=config, generation=generation), timeout=self.timeout)
        return reply.component

    async def pause(self, name: str, generation: int = 0) -> rpb.Component:
        with self._errors():
            reply = await self._stub.PauseComponent(apb.AgentServicePauseComponentRequest(
                name=name, generation=generation), timeout=self.timeout)
        return reply.component

    async def resume(self, name: str, generation: int = 0) -> rpb.Component:
        with self._errors():
            reply = await self._stub.ResumeComponent(apb.AgentServiceResumeComponentRequest(
                name=name, generation=generation), timeout=self.timeout)
        return reply.component

    async def kill(self, name: str, generation: int = 0, *, timeout: float | None = None) -> None:
        with self._errors():
            await self._stub.KillComponent(apb.AgentServiceKillComponentRequest(
                name=name, generation=generation), timeout=timeout or self.timeout)

    async def logs(self, name: str, *, from_index: int = 0, follow: bool = False
                   ) -> AsyncIterator[rpb.LogLine]:
        call = self._stub.StreamLogs(apb.AgentServiceStreamLogsRequest(
            name=name, from_index=from_index, follow=follow),
            timeout=None if follow else self.timeout)
        try:
            with self._errors():
                async for reply in call:
                    for line in reply.lines:
                        yield line
        finally:
            call.cancel()

    # --- checkpoints and restores -----------------------------------------------------

    async def checkpoint(self, name: str, *, since_id: str = "", freeze: bool = False,
                         generation: int = 0, resume_id: str = "", resume_from_part: int = 0
                         ) -> AsyncIterator[CheckpointPart | Signature]:
        """The checkpoint's parts as the board produced them (pages compressed), then
        the agent's signature if it signs; with ``resume_id``, that checkpoint again
        from part ``resume_from_part``."""
        call = self._stub.Checkpoint(apb.AgentServiceCheckpointRequest(
            name=name, since_id=since_id, freeze=freeze, generation=generation,
            resume_id=resume_id, resume_from_part=resume_from_part))
        try:
            with self._errors():
                while True:
                    try:
                        reply = await asyncio.wait_for(call.read(), STREAM_IDLE_TIMEOUT)
                    except TimeoutError:
                        raise errors.Unavailable(f"{self._target} sent nothing for "
                                                 f"{STREAM_IDLE_TIMEOUT:g} s") from None
                    if reply is grpc.aio.EOF:
                        break
                    part = reply.WhichOneof("part")
                    if part is None:
                        raise errors.InternalError(f"{self._target} sent an empty part")
                    if part == "signature":
                        signature = convert.signature_from_pb(reply.signature)
                        if signature is not None:
                            yield signature
                        continue
                    yield getattr(reply, part)
        finally:
            call.cancel()

    async def begin_restore(self, name: str = "") -> int:
        with self._errors():
            reply = await self._stub.BeginRestore(apb.AgentServiceBeginRestoreRequest(name=name),
                                                  timeout=self.timeout)
        return reply.session

    def open_stage(self, session: int, resume_from_part: int = 0, *,
                   signature: Signature | None = None, root_digest: bytes = b"") -> StageWriter:
        """``signature`` over the checkpoint with ``root_digest``: sent with its start."""
        return StageWriter(self._stub.StageCheckpoint(), session, self.board, resume_from_part,
                           signature, root_digest)

    async def stage_status(self, session: int) -> apb.AgentServiceGetStageStatusResponse:
        with self._errors():
            return await self._stub.GetStageStatus(
                apb.AgentServiceGetStageStatusRequest(session=session), timeout=self.timeout)

    async def commit_restore(self, session: int, generation: int = 0
                             ) -> apb.AgentServiceCommitRestoreResponse:
        with self._errors():
            return await self._stub.CommitRestore(apb.AgentServiceCommitRestoreRequest(
                session=session, generation=generation), timeout=self.timeout)

    async def abort_restore(self, session: int) -> None:
        with self._errors():
            await self._stub.AbortRestore(apb.AgentServiceAbortRestoreRequest(session=session),
                                          timeout=self.timeout)
