"""The board side of the board protocol: requests in, responses out.

No I/O here; ``server.py`` feeds it from the link. Each request yields its
responses lazily, so a checkpoint is streamed while the board keeps running
between chunks. Errors are mapped once, here, to ErrorReply codes.
"""

from __future__ import annotations

import itertools
import logging
from typing import Callable, Iterator

from . import errors, wire
from .emu import Board
from .emu.cr import DEFAULT_CAP_QUOTA, DEFAULT_RAM_QUOTA
from .emu.restore import Restorer
from .protocol import PROTOCOL_VERSION
from .v1 import board_pb2 as bpb

__all__ = ["BoardService", "PROTOCOL_VERSION"]

LOG_BATCH = 200

log = logging.getLogger(__name__)


class _Staging:
    def __init__(self, restorer: Restorer):
        self.restorer = restorer
        self.assembler: wire.CheckpointAssembler | None = None
        # Page chunks get no answer of their own; a bad one fails the StageEnd.
        self.error: errors.GenodeCrError | None = None


class BoardService:
    def __init__(self, board: Board, *, baud: int = 0):
        self.board = board
        self.baud = baud
        self._sessions: dict[int, _Staging] = {}
        self._session_ids = itertools.count(1)
        self._followers: dict[int, tuple[str, int]] = {}   # request id -> (name, next index)

    # --- entry points ----------------------------------------------------------------

    def handle(self, request: bpb.Request) -> Iterator[bpb.Response]:
        kind = request.WhichOneof("body")
        handler: Callable[[bpb.Request], Iterator[bpb.Response]] | None = \
            getattr(self, f"_on_{kind}", None) if kind else None
        try:
            if handler is None:
                raise errors.ProtocolError(f"unknown request type (field {kind or 'none'})")
            yield from handler(request)
        except errors.GenodeCrError as error:
            yield self._error(request.id, error.code, str(error))
        except Exception as error:           # keep serving whatever a request did
            log.exception("request %s failed", kind)
            yield self._error(request.id, "internal", f"{type(error).__name__}: {error}")

    def undecodable(self, detail: str) -> bpb.Response:
        return self._error(0, errors.ProtocolError.code, f"undecodable request: {detail}")

    def poll_followers(self) -> list[bpb.Response]:
        """New log lines for every ``logs --follow`` still open."""
        out = []
        for request_id, (name, index) in list(self._followers.items()):
            lines = self.board.log_entries(name)[index:index + LOG_BATCH]
            if lines:
                self._followers[request_id] = (name, index + len(lines))
                out.append(self._log_lines(request_id, lines, index + len(lines), last=False))
        return out

    def reset(self) -> None:
        """The agent went away: nothing it staged will be committed."""
        for staging in self._sessions.values():
            staging.restorer.abort()
        self._sessions.clear()
        self._followers.clear()

    # --- helpers ------------------------------------------------------------------------

    @staticmethod
    def _error(request_id: int, code: str, message: str) -> bpb.Response:
        return bpb.Response(id=request_id, last=True,
                            error=bpb.ErrorReply(code=code, message=message))

    @staticmethod
    def _log_lines(request_id: int, lines, next_index: int, last: bool) -> bpb.Response:
        return bpb.Response(id=request_id, last=last, log_lines=bpb.LogLines(
            lines=[bpb.LogLine(time_us=e.time_us, text=e.text) for e in lines],
            next_index=next_index))

    def _component(self, request_id: int, name: str) -> bpb.Response:
        return bpb.Response(id=request_id, last=True,
                            component=wire.component_to_pb(self.board.cr.info(name)))

    def _staging(self, session: int) -> _Staging:
        try:
            return self._sessions[session]
        except KeyError:
            raise errors.RequestError(f"no restore session {session}") from None

    # --- requests ------------------------------------------------------------------------

    def _on_hello(self, request: bpb.Request) -> Iterator[bpb.Response]:
        if request.hello.protocol_version < 1:
            raise errors.ProtocolError("protocol version 0 does not exist")
        info = self.board.info()
        yield bpb.Response(id=request.id, last=True, board_info=bpb.BoardInfo(
            protocol_version=min(PROTOCOL_VERSION, request.hello.protocol_version),
            name=info["name"], arch=info["arch"], kernel=info["kernel"],
            ram_total=info["ram_total"], ram_free=info["ram_free"],
            caps_total=info["caps_total"], caps_free=info["caps_free"],
            roms=[bpb.RomInfo(name=m.name, digest=m.digest, size=len(m.data))
                  for m in self.board.roms.values()],
            board_time_us=self.board.kernel.now_us, baud=self.baud))

    def _on_list_components(self, request: bpb.Request) -> Iterator[bpb.Response]:
        yield bpb.Response(id=request.id, last=True, components=bpb.ComponentList(
            components=[wire.component_to_pb(c) for c in self.board.cr.components()]))

    def _on_start(self, request: bpb.Request) -> Iterator[bpb.Response]:
        s = request.start
        self.board.cr.start(s.name, s.rom or s.name, ram_quota=s.ram_quota or DEFAULT_RAM_QUOTA,
                            cap_quota=s.cap_quota or DEFAULT_CAP_QUOTA, config=s.config)
        yield self._component(request.id, s.name)

    def _on_pause(self, request: bpb.Request) -> Iterator[bpb.Response]:
        self.board.cr.pause(request.pause.name)
        yield self._component(request.id, request.pause.name)

    def _on_resume(self, request: bpb.Request) -> Iterator[bpb.Response]:
        self.board.cr.resume(request.resume.name)
        yield self._component(request.id, request.resume.name)

    def _on_kill(self, request: bpb.Request) -> Iterator[bpb.Response]:
        self.board.cr.kill(request.kill.name)
        yield bpb.Response(id=request.id, last=True, ok=bpb.Empty())

    def _on_logs(self, request: bpb.Request) -> Iterator[bpb.Response]:
        r = request.logs
        self.board.cr.info(r.name)            # unknown components are an error
        lines = self.board.log_entries(r.name)
        start = min(r.from_index, len(lines))
        for i in range(start, len(lines), LOG_BATCH):
            batch = lines[i:i + LOG_BATCH]
            yield self._log_lines(request.id, batch, i + len(batch), last=False)
        if r.follow:
            self._followers[request.id] = (r.name, len(lines))
        else:
            yield self._log_lines(request.id, [], len(lines), last=True)

    def _on_cancel(self, request: bpb.Request) -> Iterator[bpb.Response]:
        follower = self._followers.pop(request.cancel.request_id, None)
        if follower is not None:
            yield self._log_lines(request.cancel.request_id, [], follower[1], last=True)
        yield bpb.Response(id=request.id, last=True, ok=bpb.Empty())

    def _on_checkpoint(self, request: bpb.Request) -> Iterator[bpb.Response]:
        r = request.checkpoint
        checkpoint = self.board.cr.checkpoint(r.name, since=r.since_id or None, freeze=r.freeze)
        for message in wire.checkpoint_messages(checkpoint):
            if isinstance(message, bpb.CheckpointStart):
                yield bpb.Response(id=request.id, checkpoint_start=message)
            elif isinstance(message, bpb.PageChunk):
                yield bpb.Response(id=request.id, pages=message)
            else:
                yield bpb.Response(id=request.id, last=True, checkpoint_end=message)

    def _on_restore_begin(self, request: bpb.Request) -> Iterator[bpb.Response]:
        session = next(self._session_ids)
        self._sessions[session] = _Staging(
            self.board.cr.restorer(name=request.restore_begin.name or None))
        yield bpb.Response(id=request.id, last=True,
                           restore_session=bpb.RestoreSession(session=session))

    def _on_stage_start(self, request: bpb.Request) -> Iterator[bpb.Response]:
        staging = self._staging(request.stage_start.session)
        staging.assembler = wire.CheckpointAssembler(request.stage_start.checkpoint)
        yield bpb.Response(id=request.id, last=True, ok=bpb.Empty())

    def _on_stage_pages(self, request: bpb.Request) -> Iterator[bpb.Response]:
        staging = self._staging(request.stage_pages.session)
        if staging.assembler is None:
            staging.error = errors.ProtocolError("pages staged before StageStart")
            return
        try:
            staging.assembler.add(request.stage_pages.chunk)
        except errors.GenodeCrError as error:
            staging.error = staging.error or error
        return
        yield

    def _on_stage_end(self, request: bpb.Request) -> Iterator[bpb.Response]:
        staging = self._staging(request.stage_end.session)
        if staging.assembler is None:
            raise errors.ProtocolError("StageEnd without StageStart")
        assembler, staging.assembler = staging.assembler, None
        failed, staging.error = staging.error, None
        if failed is not None:
            raise failed
        checkpoint = assembler.finish(request.stage_end.end)
        staging.restorer.stage(checkpoint)
        report = staging.restorer.report
        yield bpb.Response(id=request.id, last=True, stage_done=bpb.StageDone(
            rounds=report.rounds, pages_written=report.pages_written))

    def _on_restore_commit(self, request: bpb.Request) -> Iterator[bpb.Response]:
        session = request.restore_commit.session
        staging = self._staging(session)
        del self._sessions[session]
        child, report = staging.restorer.commit()
        self.board.cr.adopt(child)
        yield bpb.Response(id=request.id, last=True, restore_report=wire.report_to_pb(report))

    def _on_restore_abort(self, request: bpb.Request) -> Iterator[bpb.Response]:
        staging = self._sessions.pop(request.restore_abort.session, None)
        if staging is not None:
            staging.restorer.abort()
        yield bpb.Response(id=request.id, last=True, ok=bpb.Empty())
