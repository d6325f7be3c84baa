"""What the agent does, without gRPC: a board's CR component, guarded.

``AgentService`` takes requests already converted from protobuf, checks and
bounds them, applies fencing (``fencing.py``) and forwards them to the board
through the connection's AsyncBoardClient. Checkpoints pass through as the
board's own messages, in both directions, one at a time as they arrive: the
agent never holds a whole checkpoint and never touches the compressed pages.

Errors: bad requests raise ``migrate.errors.RequestError``; a board that
cannot be reached raises ``Unavailable`` (also for calls the link's death
caught in flight); a board's refusal keeps its genode_cr type, which the gRPC
edge maps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import AsyncIterable, AsyncIterator, Iterator

from genode_cr.aio_client import AsyncBoardClient, CheckpointMessage
from genode_cr.errors import BoardUnreachable
from genode_cr.model import ComponentInfo, RestoreReport
from genode_cr.v1 import board_pb2 as bpb

from ..errors import NotFound, PreconditionFailed, RequestError, Unavailable
from .connection import BoardConnection
from .fencing import Fences

__all__ = ["AgentService", "BoardStatus", "MAX_NAME_LENGTH"]

log = logging.getLogger(__name__)

# Bounds on what a caller may send, so that no request makes the agent or the board work
# (or hold memory) without limit.
MAX_NAME_LENGTH = 64
MAX_ID_LENGTH = 128
MAX_CONFIG_BYTES = 64 << 10
MAX_RAM_QUOTA = 1 << 40
MAX_CAP_QUOTA = 1 << 20
#: Page chunks travel as one link message each (the link takes at most 1 MiB).
MAX_CHUNK_PAGES = 64
MAX_CHUNK_BYTES = 512 << 10


@dataclass(frozen=True)
class BoardStatus:
    """The board as last seen (``info`` None: never reached) and whether its link is up."""
    info: bpb.BoardInfo | None
    healthy: bool
    detail: str


@dataclass
class _Session:
    connection_id: int      # the board forgets a session when the link that opened it ends
    component: str          # "" until the name or the first staged manifest says


def _check_name(value: str, what: str = "name", *, required: bool = True) -> str:
    if not value:
        if required:
            raise RequestError(f"{what} is required")
        return value
    if len(value) > MAX_NAME_LENGTH or not value.isprintable():
        raise RequestError(f"{what} must be at most {MAX_NAME_LENGTH} printable characters")
    return value


def _check_bound(value: int, limit: int, what: str) -> int:
    if value > limit:
        raise RequestError(f"{what} {value} is above the limit of {limit}")
    return value


def _check_chunk(chunk: bpb.PageChunk) -> None:
    if len(chunk.pages) > MAX_CHUNK_PAGES:
        raise RequestError(f"a page chunk of {len(chunk.pages)} pages; at most "
                           f"{MAX_CHUNK_PAGES} go in one")
    if chunk.ByteSize() > MAX_CHUNK_BYTES:
        raise RequestError(f"a page chunk of {chunk.ByteSize()} bytes; at most "
                           f"{MAX_CHUNK_BYTES} go in one")


@contextlib.contextmanager
def _unavailable_when_unreachable() -> Iterator[None]:
    # A call the link's death caught in flight fails like one made while it is down.
    try:
        yield
    except BoardUnreachable as error:
        raise Unavailable(str(error)) from error


class AgentService:
    def __init__(self, connection: BoardConnection):
        self.connection = connection
        self.fences = Fences()
        self._sessions: dict[int, _Session] = {}
        self._cleanups: set[asyncio.Task[None]] = set()

    @property
    def board_name(self) -> str:
        return self.connection.board_name

    def _client(self) -> AsyncBoardClient:
        return self.connection.client()

    async def close(self) -> None:
        """Lets the session aborts still under way finish (briefly)."""
        if self._cleanups:
            await asyncio.wait(self._cleanups, timeout=2.0)

    # --- the board and its components -----------------------------------------------------

    async def board(self) -> BoardStatus:
        """A fresh hello while the link is up; the last known board while it is down."""
        if self.connection.healthy:
            try:
                info = await self._client().hello()
            except (BoardUnreachable, Unavailable):
                pass
            else:
                self.connection.info = info
                return BoardStatus(info, True, "")
        return BoardStatus(self.connection.info, False,
                           self.connection.detail or "the board link is down")

    async def components(self) -> list[ComponentInfo]:
        with _unavailable_when_unreachable():
            return await self._client().components()

    async def start(self, name: str, rom: str = "", *, ram_quota: int = 0, cap_quota: int = 0,
                    config: str = "", generation: int = 0) -> ComponentInfo:
        _check_name(name)
        _check_name(rom, "rom", required=False)
        _check_bound(ram_quota, MAX_RAM_QUOTA, "ram_quota_bytes")
        _check_bound(cap_quota, MAX_CAP_QUOTA, "cap_quota")
        _check_bound(len(config.encode()), MAX_CONFIG_BYTES, "config bytes")
        self.fences.admit(name, generation)
        with _unavailable_when_unreachable():
            return await self._client().start(name, rom or None, ram_quota=ram_quota,
                                              cap_quota=cap_quota, config=config)

    async def pause(self, name: str, *, generation: int = 0) -> ComponentInfo:
        self.fences.admit(_check_name(name), generation)
        with _unavailable_when_unreachable():
            return await self._client().pause(name)

    async def resume(self, name: str, *, generation: int = 0) -> ComponentInfo:
        self.fences.admit(_check_name(name), generation)
        with _unavailable_when_unreachable():
            return await self._client().resume(name)

    async def kill(self, name: str, *, generation: int = 0) -> None:
        self.fences.admit(_check_name(name), generation)
        with _unavailable_when_unreachable():
            await self._client().kill(name)

    async def find(self, name: str) -> ComponentInfo | None:
        return next((c for c in await self.components() if c.name == name), None)

    async def logs(self, name: str, *, from_index: int = 0, follow: bool = False
                   ) -> AsyncIterator[bpb.LogLines]:
        """The component's log in the board's batches; with ``follow``, until closed."""
        _check_name(name)
        client = self._client()
        with _unavailable_when_unreachable():
            async with contextlib.aclosing(client.log_batches(name, from_index, follow=follow)
                                           ) as batches:
                async for batch in batches:
                    yield batch

    # --- checkpoints ------------------------------------------------------------------------

    async def checkpoint(self, name: str, *, since_id: str = "", freeze: bool = False,
                         generation: int = 0) -> AsyncIterator[CheckpointMessage]:
        """The board's checkpoint messages, each passed on as it arrives."""
        _check_name(name)
        if len(since_id) > MAX_ID_LENGTH or not since_id.isprintable():
            raise RequestError(f"since_id must be at most {MAX_ID_LENGTH} printable characters")
        self.fences.admit(name, generation)
        client = self._client()
        with _unavailable_when_unreachable():
            async with contextlib.aclosing(client.checkpoint_stream(
                    name, since_id=since_id, freeze=freeze)) as messages:
                async for message in messages:
                    yield message

    # --- restores ---------------------------------------------------------------------------

    async def begin_restore(self, name: str = "") -> int:
        _check_name(name, required=False)
        connection_id = self.connection.connection_id
        with _unavailable_when_unreachable():
            session = await self._client().begin_restore(name or None)
        self._sessions[session] = _Session(connection_id, name)
        return session

    def _session(self, session: int) -> _Session:
        if session == 0:
            raise RequestError("session is required")
        record = self._sessions.get(session)
        if record is None:
            raise NotFound(f"no restore session {session} on {self.board_name}")
        if record.connection_id != self.connection.connection_id:
            del self._sessions[session]
            raise PreconditionFailed(f"restore session {session} was lost when the link to "
                                     f"{self.board_name} dropped; begin a new one")
        return record

    async def stage(self, session: int, parts: AsyncIterable[CheckpointMessage]
                    ) -> bpb.StageDone:
        """Stages one checkpoint of a chain, forwarding its parts as they arrive.

        The parts must be a CheckpointStart, page chunks, a CheckpointEnd, and
        nothing after. If anything fails (a bad part, the caller went away,
        the board refused) the session is aborted: the board drops what was
        staged and keeps running; the caller begins a new session.
        """
        record = self._session(session)
        incoming = aiter(parts)
        try:
            async with contextlib.aclosing(self._ordered(incoming, record)) as ordered:
                with _unavailable_when_unreachable():
                    done = await self._client().stage_stream(session, ordered)
            if await anext(incoming, None) is not None:
                raise RequestError("a staged checkpoint goes on after its CheckpointEnd")
        except BaseException:
            self._abort_in_background(session)
            raise
        return done

    @staticmethod
    async def _ordered(parts: AsyncIterator[CheckpointMessage], record: _Session
                       ) -> AsyncIterator[CheckpointMessage]:
        """The parts, checked to form one checkpoint; ends with its CheckpointEnd."""
        started = False
        async for part in parts:
            if isinstance(part, bpb.CheckpointStart):
                if started:
                    raise RequestError("a second CheckpointStart in one staged checkpoint")
                started = True
                record.component = record.component or part.manifest.component
            elif not started:
                raise RequestError(f"a staged checkpoint must begin with its CheckpointStart, "
                                   f"not a {type(part).__name__}")
            elif isinstance(part, bpb.PageChunk):
                _check_chunk(part)
            elif not isinstance(part, bpb.CheckpointEnd):
                raise RequestError(f"not a checkpoint part: {type(part).__name__}")
            yield part
            if isinstance(part, bpb.CheckpointEnd):
                return
        raise RequestError("the staged checkpoint ended before its CheckpointEnd"
                           if started else "an empty staged checkpoint")

    async def commit_restore(self, session: int, *, generation: int = 0
                             ) -> tuple[RestoreReport, ComponentInfo | None]:
        """Commits; returns the report and the component as it now runs."""
        record = self._session(session)
        if record.component:
            self.fences.admit(record.component, generation)
        del self._sessions[session]      # the board ends the session whatever the outcome
        with _unavailable_when_unreachable():
            report = await self._client().commit_restore(session)
        try:
            component = await self.find(report.component)
        except Unavailable:
            component = None             # committed; only the follow-up look failed
        return report, component

    async def abort_restore(self, session: int) -> None:
        if session == 0:
            raise RequestError("session is required")
        record = self._sessions.pop(session, None)
        if record is not None and record.connection_id != self.connection.connection_id:
            return                       # the board dropped it with the link
        with _unavailable_when_unreachable():
            await self._client().abort_restore(session)

    def _abort_in_background(self, session: int) -> None:
        """Aborts a session even when the call that failed is being cancelled."""
        record = self._sessions.pop(session, None)
        if record is None or record.connection_id != self.connection.connection_id:
            return
        task = asyncio.get_running_loop().create_task(self._abort_quietly(session))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _abort_quietly(self, session: int) -> None:
        try:
            await self._client().abort_restore(session)
        except Exception as error:      # the board aborts it anyway when the link ends
            log.info("aborting restore session %s on %s: %s", session, self.board_name, error)
