"""The agent side of the board protocol for asyncio code: several requests at once.

    async with await AsyncBoardClient.connect("socket://127.0.0.1:4555") as board:
        await board.start("counter")
        async with contextlib.aclosing(board.follow_logs("counter")) as lines:
            ...                                 # meanwhile, on the same link:
        async for message in board.checkpoint_stream("counter", freeze=True):
            ...                                 # CheckpointStart, PageChunk..., CheckpointEnd

The async twin of ``client.BoardClient`` (docs/board-protocol.md), for the
agent, which serves many gRPC calls over one board link: a reader task routes
every response by its id to the call that waits for it, so a ``logs
--follow`` can stay open while a checkpoint streams. Checkpoints pass
through as the board's own messages: pages stay compressed as the board
made them, nothing here decompresses or recompresses.

Every response has a deadline (``timeout``; a follow waits without one and
relies on the link's keepalive). A board that does not answer in time, a
dead link and a board that restarted raise BoardUnreachable, and once the
link is gone every pending and later call does; a refusal the board reports
is raised as the same GenodeCrError subclass it was on the board.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, AsyncIterable, AsyncIterator, Iterable, Mapping, Union

import serial
from google.protobuf.message import DecodeError

from . import wire
from .client import LogLine
from .errors import BoardUnreachable, GenodeCrError, ProtocolError, RequestError, error_from_code
from .link import AsyncLink, LinkError, LinkReset, LinkStats, LocalLinkError
from .model import ComponentInfo, RestoreReport
from .protocol import PROTOCOL_VERSION
from .v1 import board_pb2 as bpb

__all__ = ["AsyncBoardClient", "CheckpointMessage", "DEFAULT_TIMEOUT"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0

#: What a checkpoint is on the wire: one start, any number of page chunks, one end.
CheckpointMessage = Union[bpb.CheckpointStart, bpb.PageChunk, bpb.CheckpointEnd]

_MAX_ID = (1 << 32) - 1

#: How long closing a follow waits to hand its Cancel to the link.
_CANCEL_TIMEOUT = 5.0


class _Pending:
    """One request waiting for responses: they queue here until its caller takes them."""

    __slots__ = ("id", "queue", "answered")

    def __init__(self, request_id: int) -> None:
        self.id = request_id
        self.queue: asyncio.Queue[bpb.Response | GenodeCrError] = asyncio.Queue()
        self.answered = False       # got a response, so the board decoded the request


class AsyncBoardClient:
    """A board's CR component as coroutines; create it with ``connect``."""

    def __init__(self, link: AsyncLink, *, timeout: float = DEFAULT_TIMEOUT,
                 label: str = "board"):
        self.link = link
        self.timeout = timeout
        self.info: bpb.BoardInfo = bpb.BoardInfo()
        self._label = label          # how errors name the board until it has said its name
        self._last_id = 0
        self._pending: dict[int, _Pending] = {}
        self._failure: str | None = None   # why the link is gone, once it is
        self._gone = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read_loop(),
                                                              name=f"board-reader {label}")

    @classmethod
    async def connect(cls, url: str, *, baud: int | None = None, pace: bool = False,
                      timeout: float = DEFAULT_TIMEOUT, connect_timeout: float = 10.0,
                      client: str = "migrate-agent",
                      link_options: Mapping[str, Any] | None = None) -> AsyncBoardClient:
        """Opens the link and says hello; BoardUnreachable if the board does not answer.

        ``link_options`` go to our side of the link (``Link``: rto, dead_after, ...)."""
        try:
            link = await AsyncLink.open(url, baud=baud, pace=pace,
                                        connect_timeout=connect_timeout, **(link_options or {}))
        except (serial.SerialException, OSError) as error:  # refused, no such device, ...
            raise BoardUnreachable(f"{url}: {error}") from error
        except ValueError as error:                          # not a URL pyserial knows
            raise RequestError(f"bad board URL {url!r}: {error}") from error
        except LinkError as error:
            raise BoardUnreachable(f"{url}: {error}") from error
        self = cls(link, timeout=timeout, label=url)
        try:
            await self.hello(client)
        except BaseException:
            await self.close()
            raise
        return self

    @property
    def name(self) -> str:
        """The board's name once it has said hello, else the URL."""
        return self.info.name or self._label

    @property
    def stats(self) -> LinkStats:
        return self.link.stats

    @property
    def closed(self) -> bool:
        """True once the link is gone (closed, dead or reset): every call now fails."""
        return self._failure is not None

    @property
    def closed_reason(self) -> str:
        """Why the link is gone ("" while it is not)."""
        return self._failure or ""

    async def wait_closed(self) -> None:
        """Returns when the link is gone, for whoever reconnects."""
        await self._gone.wait()

    async def close(self) -> None:
        self._fail(f"{self.name}: the board client was closed")
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        await self.link.close()

    async def __aenter__(self) -> AsyncBoardClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- requests and responses ------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while True:
                payload = await self.link.receive()
                response = bpb.Response()
                try:
                    response.ParseFromString(payload)
                except DecodeError as error:
                    # The link checked the frame; a board that sends this is broken.
                    self._fail(f"{self.name}: undecodable response from the board: {error}")
                    return
                self._route(response)
        except LinkReset as error:
            self._fail(f"{self.name}: the board restarted; every request in flight was lost "
                       f"({error})")
        except LinkError as error:
            self._fail(f"{self.name}: {error}")
        except asyncio.CancelledError:
            self._fail(f"{self.name}: the board client was closed")
            raise
        except Exception as error:    # never leave callers waiting on a reader that died
            log.exception("board reader failed")
            self._fail(f"{self.name}: {type(error).__name__}: {error}")

    def _route(self, response: bpb.Response) -> None:
        if response.id == 0:
            self._undecodable(response)
            return
        pending = self._pending.get(response.id)
        if pending is None:
            return                   # a late answer to a request its caller gave up on
        pending.answered = True
        pending.queue.put_nowait(response)
        if response.last:
            del self._pending[response.id]

    def _undecodable(self, response: bpb.Response) -> None:
        """The board could not decode one of our requests and cannot say which.

        Such a request never gets a response of its own, so it is one of those
        still waiting for their first; each of them gets the error (a late
        answer to the others is dropped): better a clear protocol error than a
        deadline that blames the line.
        """
        def error() -> GenodeCrError:           # one per caller, as in _unreachable
            if response.WhichOneof("body") == "error":
                return error_from_code(response.error.code, response.error.message)
            return ProtocolError("a response without a request id")

        for request_id, pending in list(self._pending.items()):
            if not pending.answered:
                del self._pending[request_id]
                pending.queue.put_nowait(error())

    def _fail(self, reason: str) -> None:
        """The link is gone: every pending call and every later one fails."""
        if self._failure is None:
            self._failure = reason
        self._gone.set()
        pending, self._pending = self._pending, {}
        for waiting in pending.values():
            waiting.queue.put_nowait(self._unreachable())

    def _unreachable(self) -> BoardUnreachable:
        # A fresh exception for every caller: one raised in many tasks would
        # collect all their tracebacks.
        return BoardUnreachable(self._failure or f"{self.name}: the link is gone")

    async def _send_request(self, request: bpb.Request) -> None:
        if self._failure is not None:
            raise self._unreachable()
        try:
            await self.link.send(request.SerializeToString(), timeout=self.timeout)
        except TimeoutError:
            raise BoardUnreachable(f"{self.name}: the link took no request for "
                                   f"{self.timeout:g} s") from None
        except LocalLinkError as error:
            if self._failure is not None:
                raise self._unreachable() from error
            # The link is fine; this one request cannot go (e.g. over its size limit).
            raise RequestError(f"{self.name}: {error}") from error
        except LinkError as error:
            raise (self._unreachable() if self._failure is not None
                   else BoardUnreachable(f"{self.name}: {error}")) from error

    def _next_id(self) -> int:
        """Request ids are uint32 and never 0; after wrapping, ids still pending are skipped."""
        while True:
            self._last_id = self._last_id % _MAX_ID + 1
            if self._last_id not in self._pending:
                return self._last_id

    async def _open(self, **body) -> _Pending:
        """Sends a request whose responses are collected."""
        pending = _Pending(self._next_id())
        # Registered before sending: the answer may come before send() returns.
        self._pending[pending.id] = pending
        try:
            await self._send_request(bpb.Request(id=pending.id, **body))
        except BaseException:
            self._pending.pop(pending.id, None)
            raise
        return pending

    async def _send_unanswered(self, **body) -> None:
        """Sends a request the board does not answer (stage_pages)."""
        await self._send_request(bpb.Request(id=self._next_id(), **body))

    async def _responses(self, pending: _Pending, *, deadline: bool = True
                         ) -> AsyncIterator[bpb.Response]:
        """The responses to a request, in order, until its last; errors raised."""
        try:
            while True:
                try:
                    async with asyncio.timeout(self.timeout if deadline else None):
                        item = await pending.queue.get()
                except TimeoutError:
                    raise BoardUnreachable(f"{self.name}: the board did not answer within "
                                           f"{self.timeout:g} s") from None
                if isinstance(item, GenodeCrError):
                    raise item
                if item.WhichOneof("body") == "error":
                    raise error_from_code(item.error.code, item.error.message)
                yield item
                if item.last:
                    return
        finally:
            self._pending.pop(pending.id, None)  # answers after this are dropped

    async def _call(self, **body) -> bpb.Response:
        pending = await self._open(**body)
        last = None
        async with contextlib.aclosing(self._responses(pending)) as responses:
            async for last in responses:
                pass
        assert last is not None
        return last

    # --- the CR component's operations -----------------------------------------------------

    async def hello(self, client: str = "migrate-agent") -> bpb.BoardInfo:
        info = (await self._call(hello=bpb.Hello(protocol_version=PROTOCOL_VERSION,
                                                 client=client))).board_info
        if not 1 <= info.protocol_version <= PROTOCOL_VERSION:
            raise ProtocolError(f"{info.name or self._label} answered protocol version "
                                f"{info.protocol_version}; we speak 1 to {PROTOCOL_VERSION}")
        self.info = info
        return info

    async def components(self) -> list[ComponentInfo]:
        reply = await self._call(list_components=bpb.Empty())
        return [wire.component_from_pb(c) for c in reply.components.components]

    async def start(self, name: str, rom: str | None = None, *, ram_quota: int = 0,
                    cap_quota: int = 0, config: str = "") -> ComponentInfo:
        """``config`` becomes the component's "config" ROM (empty: an empty one)."""
        reply = await self._call(start=bpb.StartRequest(name=name, rom=rom or name,
                                                        ram_quota=ram_quota,
                                                        cap_quota=cap_quota, config=config))
        return wire.component_from_pb(reply.component)

    async def pause(self, name: str) -> ComponentInfo:
        reply = await self._call(pause=bpb.ComponentRequest(name=name))
        return wire.component_from_pb(reply.component)

    async def resume(self, name: str) -> ComponentInfo:
        reply = await self._call(resume=bpb.ComponentRequest(name=name))
        return wire.component_from_pb(reply.component)

    async def kill(self, name: str) -> None:
        await self._call(kill=bpb.ComponentRequest(name=name))

    async def logs(self, name: str, from_index: int = 0) -> list[LogLine]:
        pending = await self._open(logs=bpb.LogsRequest(name=name, from_index=from_index))
        lines: list[LogLine] = []
        async with contextlib.aclosing(self._responses(pending)) as responses:
            async for response in responses:
                lines.extend(_lines(response))
        return lines

    async def log_batches(self, name: str, from_index: int = 0, *, follow: bool = False
                          ) -> AsyncIterator[bpb.LogLines]:
        """The log as the board sends it: batches of lines with their ``next_index``.

        Without ``follow`` it ends after the existing lines (a last, possibly
        empty batch); with it, it waits for new lines until closed, and closing
        it sends the board a Cancel. Close it (``contextlib.aclosing``) when done.
        """
        pending = await self._open(logs=bpb.LogsRequest(name=name, from_index=from_index,
                                                        follow=follow))
        finished = False
        try:
            async with contextlib.aclosing(self._responses(pending, deadline=not follow)
                                           ) as responses:
                async for response in responses:
                    yield response.log_lines
            finished = True
        finally:
            if follow and not finished and self._failure is None:
                # Nobody waits for the answer: its ok and the follow's last batch
                # arrive for ids no longer pending and are dropped.
                with contextlib.suppress(GenodeCrError, TimeoutError):
                    async with asyncio.timeout(_CANCEL_TIMEOUT):
                        await self._send_unanswered(cancel=bpb.Cancel(request_id=pending.id))

    async def follow_logs(self, name: str, from_index: int = 0) -> AsyncIterator[LogLine]:
        """Log lines as the component writes them, until closed (which cancels the follow)."""
        async with contextlib.aclosing(self.log_batches(name, from_index, follow=True)
                                       ) as batches:
            async for batch in batches:
                for line in _batch_lines(batch):
                    yield line

    async def checkpoint_stream(self, name: str, *, since_id: str = "", freeze: bool = False,
                                resume_id: str = "", from_part: int = 0
                                ) -> AsyncIterator[CheckpointMessage]:
        """The checkpoint exactly as the board sends it: start, page chunks, end.

        The messages are the board's own: pages stay compressed as the board
        made them. The stream is not verified here; whoever assembles or
        stages it does (the target board refuses a damaged one).

        ``resume_id``: a stream that broke, sent again from part ``from_part``
        (0 the start, then the chunks, then the end) from the board's copy of
        that checkpoint, which must be the last one taken of ``name``; nothing
        is captured again, ``since_id`` and ``freeze`` are ignored.
        """
        pending = await self._open(checkpoint=bpb.CheckpointRequest(
            name=name, since_id=since_id, freeze=freeze, resume_id=resume_id,
            from_part=from_part if resume_id else 0))
        started = bool(resume_id) and from_part > 0    # a resumed stream has started before
        async with contextlib.aclosing(self._responses(pending)) as responses:
            async for response in responses:
                kind = response.WhichOneof("body")
                if kind == "checkpoint_start" and not started:
                    started = True
                    yield response.checkpoint_start
                elif kind == "pages" and started:
                    yield response.pages
                elif kind == "checkpoint_end" and started:
                    yield response.checkpoint_end
                    return
                else:
                    raise ProtocolError(f"{self.name}: unexpected {kind} in a checkpoint stream")
        raise ProtocolError(f"{self.name}: the checkpoint stream ended early")

    # --- restore, as the coordinator drives it -------------------------------------------

    async def begin_restore(self, name: str | None = None) -> int:
        reply = await self._call(restore_begin=bpb.RestoreBegin(name=name or ""))
        return reply.restore_session.session

    async def stage_stream(self, session: int,
                           messages: AsyncIterable[CheckpointMessage] | Iterable[CheckpointMessage],
                           *, resume: bool = False) -> bpb.StageDone:
        """Stages one checkpoint of a chain, passing its messages to the board as they come.

        Page chunks go without waiting for answers (the board gives none); only
        the link's send buffer holds them back. ``resume``: the messages go on
        with a checkpoint whose stage broke, from the first part the board
        lacks (``stage_status``): page chunks or the end, no start. Misuse (no
        start first, a second start, a start when resuming, messages after the
        end, no end) raises RequestError; the caller then aborts the session.
        """
        started = resume
        async for message in _aiter(messages):
            if isinstance(message, bpb.CheckpointStart):
                if started:
                    raise RequestError("a resumed stage goes on from a page chunk or the end, "
                                       "not a CheckpointStart" if resume else
                                       "a second CheckpointStart in one staged checkpoint")
                await self._call(stage_start=bpb.StageStart(session=session, checkpoint=message))
                started = True
            elif not started:
                raise RequestError(f"a staged checkpoint must begin with its CheckpointStart, "
                                   f"not a {type(message).__name__}")
            elif isinstance(message, bpb.PageChunk):
                await self._send_unanswered(stage_pages=bpb.StagePages(session=session,
                                                                        chunk=message))
            elif isinstance(message, bpb.CheckpointEnd):
                return (await self._call(stage_end=bpb.StageEnd(session=session, end=message))
                        ).stage_done
            else:
                raise RequestError(f"not a checkpoint message: {type(message).__name__}")
        raise RequestError("the staged checkpoint ended before its CheckpointEnd")

    async def stage_status(self, session: int) -> bpb.StageStatus:
        """Where ``session`` stands: what a broken stage must resume from."""
        return (await self._call(stage_status=bpb.RestoreSession(session=session))).stage_status

    async def commit_restore(self, session: int) -> RestoreReport:
        reply = await self._call(restore_commit=bpb.RestoreSession(session=session))
        return wire.report_from_pb(reply.restore_report)

    async def abort_restore(self, session: int) -> None:
        await self._call(restore_abort=bpb.RestoreSession(session=session))


def _batch_lines(batch: bpb.LogLines) -> list[LogLine]:
    first = batch.next_index - len(batch.lines)
    return [LogLine(first + i, line.time_us, line.text) for i, line in enumerate(batch.lines)]


def _lines(response: bpb.Response) -> list[LogLine]:
    return _batch_lines(response.log_lines)


async def _aiter(messages: AsyncIterable[CheckpointMessage] | Iterable[CheckpointMessage]
                 ) -> AsyncIterator[CheckpointMessage]:
    if isinstance(messages, AsyncIterable):
        async for message in messages:
            yield message
    else:
        for message in messages:
            yield message
