"""The board side of the board protocol: requests in, responses out.

No I/O and no clock here; ``server.py`` feeds it from the link and tells it
the time. Each request yields its responses lazily, so a checkpoint is
streamed while the board keeps running between chunks. Errors are mapped
once, here, to ErrorReply codes.

Transfers survive a dropped link: the last checkpoint taken of each
component is kept as it was sent, so that a broken stream can be sent again
from any part; and the restore sessions of an agent whose link ended are
kept, orphaned, for ``orphan_timeout`` seconds, for the agent to continue
over its next link.
"""

from __future__ import annotations

import itertools
import logging
import random
from typing import Callable, Iterator

from . import errors, wire
from .emu import Board
from .emu.cr import DEFAULT_CAP_QUOTA, DEFAULT_RAM_QUOTA
from .checkpoint import Checkpoint
from .emu.restore import Restorer
from .protocol import PROTOCOL_VERSION
from .v1 import board_pb2 as bpb

__all__ = ["BoardService", "DEFAULT_ORPHAN_TIMEOUT", "PROTOCOL_VERSION"]

LOG_BATCH = 200
#: Text bytes per batch of log lines, so that a batch fits the smallest message
#: an agent may accept (a line is at most 256 bytes as written, 768 as UTF-8).
LOG_BATCH_BYTES = 16 << 10

#: Seconds a restore session outlives the link of the agent that staged it.
DEFAULT_ORPHAN_TIMEOUT = 60.0

log = logging.getLogger(__name__)


class _Staging:
    def __init__(self, restorer: Restorer):
        self.restorer = restorer
        self.assembler: wire.CheckpointAssembler | None = None
        # Page chunks get no answer of their own; a bad one fails the StageEnd.
        self.error: errors.GenodeCrError | None = None
        self.parts = 0                 # of the checkpoint being staged, received so far
        self.last_staged_id = ""
        # Orphaned: its agent's link ended. The orphan clock starts at ``orphaned_since``
        # (None: at the next expire_orphans).
        self.orphaned = False
        self.orphaned_since: float | None = None


class _SentCheckpoint:
    """The last checkpoint taken of a component, as its stream.

    Each part is made (its pages compressed) once, when first due, and kept as
    it was sent, so a stream that broke can be sent again from any part with
    the same bytes. Once every part is made the raw checkpoint is let go.
    """

    def __init__(self, checkpoint: Checkpoint):
        self.id = checkpoint.id
        #: start, one part per PAGES_PER_CHUNK pages, end
        self.count = -(-len(checkpoint.pages) // wire.PAGES_PER_CHUNK) + 2
        self._made: list[wire.StreamMessage] = []
        self._making: Iterator[wire.StreamMessage] | None = wire.checkpoint_messages(checkpoint)

    def parts(self, first: int = 0) -> Iterator[wire.StreamMessage]:
        """Parts ``first`` to the end; any number of these may be open at once."""
        index = first
        while True:
            while index >= len(self._made) and self._making is not None:
                part = next(self._making, None)
                if part is None:
                    self._making = None
                else:
                    self._made.append(part)
            if index >= len(self._made):
                return
            yield self._made[index]
            index += 1


class BoardService:
    def __init__(self, board: Board, *, baud: int = 0,
                 orphan_timeout: float = DEFAULT_ORPHAN_TIMEOUT):
        self.board = board
        self.baud = baud
        self.orphan_timeout = orphan_timeout
        self._sessions: dict[int, _Staging] = {}
        # A board starts numbering at random, so that a session number an agent kept from
        # before the board restarted is not taken for a new session.
        self._session_ids = itertools.count(random.randrange(1, 1 << 24))
        self._followers: dict[int, tuple[str, int]] = {}   # request id -> (name, next index)
        self._sent: dict[str, _SentCheckpoint] = {}         # component -> its last checkpoint

    # --- entry points ----------------------------------------------------------------

    def handle(self, request: bpb.Request) -> Iterator[bpb.Response]:
        kind = request.WhichOneof("body")
        handler: Callable[[bpb.Request], Iterator[bpb.Response]] | None = \
            getattr(self, f"_on_{kind}", None) if kind else None
        try:
            if request.id == 0:
                # Its answers could not be told from the id-0 answer to an
                # undecodable request, so it is refused, not served.
                raise errors.ProtocolError(f"request id 0 ({kind or 'no body'}): request ids "
                                           f"are non-zero; not served")
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

    def answer_too_large(self, response: bpb.Response, size: int, limit: int) -> bpb.Response:
        """The error that replaces ``response`` (``size`` bytes), larger than the agent's
        link accepts (``limit``), and ends its request: a follow stops."""
        self._followers.pop(response.id, None)
        return self._error(response.id, errors.RequestError.code,
                           f"the answer ({response.WhichOneof('body')}, {size} bytes) is over "
                           f"the {limit} bytes the agent's link accepts per message")

    def poll_followers(self) -> list[bpb.Response]:
        """New log lines for every ``logs --follow`` still open."""
        out = []
        for request_id, (name, index) in list(self._followers.items()):
            lines = _batch(self.board.log_entries(name), index)
            if lines:
                self._followers[request_id] = (name, index + len(lines))
                out.append(self._log_lines(request_id, lines, index + len(lines), last=False))
        return out

    def reset(self, now: float | None = None) -> None:
        """The agent's link ended: its follows end with it (its streams are the
        caller's to drop). Its restore sessions are kept, orphaned, for
        ``orphan_timeout`` seconds from ``now`` (None: from the next
        ``expire_orphans``): a reconnected agent may still continue them."""
        self._followers.clear()
        for staging in self._sessions.values():
            if not staging.orphaned:
                staging.orphaned, staging.orphaned_since = True, now

    def expire_orphans(self, now: float) -> list[int]:
        """Aborts the orphaned sessions no link has claimed for ``orphan_timeout``
        seconds (freeing their quota); returns their numbers. Call it often."""
        expired = []
        for session, staging in list(self._sessions.items()):
            if not staging.orphaned:
                continue
            if staging.orphaned_since is None:
                staging.orphaned_since = now
            elif now - staging.orphaned_since >= self.orphan_timeout:
                del self._sessions[session]
                staging.restorer.abort()
                expired.append(session)
                log.info("%s: restore session %s aborted: no agent claimed it for %g s",
                         self.board.name, session, self.orphan_timeout)
        return expired

    def close(self) -> None:
        """The board stops serving: every restore session is aborted, every kept
        checkpoint dropped."""
        self._followers.clear()
        for staging in self._sessions.values():
            staging.restorer.abort()
        self._sessions.clear()
        self._sent.clear()

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
        """The session, claimed by the link that names it (no longer an orphan)."""
        try:
            staging = self._sessions[session]
        except KeyError:
            raise errors.RequestError(f"no restore session {session}") from None
        staging.orphaned, staging.orphaned_since = False, None
        return staging

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
        self._sent.pop(request.kill.name, None)
        yield bpb.Response(id=request.id, last=True, ok=bpb.Empty())

    def _on_logs(self, request: bpb.Request) -> Iterator[bpb.Response]:
        r = request.logs
        self.board.cr.info(r.name)            # unknown components are an error
        lines = self.board.log_entries(r.name)
        i = min(r.from_index, len(lines))
        while batch := _batch(lines, i):
            i += len(batch)
            yield self._log_lines(request.id, batch, i, last=False)
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
        if r.resume_id:
            parts = self._resumed(r)
        else:
            checkpoint = self.board.cr.checkpoint(r.name, since=r.since_id or None,
                                                  freeze=r.freeze)
            sent = self._sent[r.name] = _SentCheckpoint(checkpoint)
            parts = sent.parts()
        for message in parts:
            if isinstance(message, bpb.CheckpointStart):
                yield bpb.Response(id=request.id, checkpoint_start=message)
            elif isinstance(message, bpb.PageChunk):
                yield bpb.Response(id=request.id, pages=message)
            else:
                yield bpb.Response(id=request.id, last=True, checkpoint_end=message)

    def _resumed(self, r: bpb.CheckpointRequest) -> Iterator[wire.StreamMessage]:
        """The kept stream of checkpoint ``r.resume_id`` from part ``r.from_part``."""
        sent = self._sent.get(r.name)
        if sent is None:
            self.board.cr.info(r.name)        # unknown components are an error of their own
            raise errors.RequestError(f"cannot resume checkpoint {r.resume_id} of {r.name}: "
                                      f"{self.board.name} keeps no checkpoint of it")
        if sent.id != r.resume_id:
            raise errors.RequestError(f"cannot resume checkpoint {r.resume_id} of {r.name}: "
                                      f"{self.board.name} keeps only the last one taken, "
                                      f"{sent.id}")
        if r.from_part >= sent.count:
            raise errors.RequestError(f"checkpoint {sent.id} has parts 0 to {sent.count - 1}, "
                                      f"not {r.from_part}")
        return sent.parts(r.from_part)

    def _on_restore_begin(self, request: bpb.Request) -> Iterator[bpb.Response]:
        session = next(self._session_ids)
        self._sessions[session] = _Staging(
            self.board.cr.restorer(name=request.restore_begin.name or None))
        yield bpb.Response(id=request.id, last=True,
                           restore_session=bpb.RestoreSession(session=session))

    def _on_stage_start(self, request: bpb.Request) -> Iterator[bpb.Response]:
        staging = self._staging(request.stage_start.session)
        staging.assembler = wire.CheckpointAssembler(request.stage_start.checkpoint)
        staging.parts = 1
        yield bpb.Response(id=request.id, last=True, ok=bpb.Empty())

    def _on_stage_pages(self, request: bpb.Request) -> Iterator[bpb.Response]:
        staging = self._staging(request.stage_pages.session)
        if staging.assembler is None:
            staging.error = errors.ProtocolError("pages staged before StageStart")
            return
        staging.parts += 1
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
        staging.last_staged_id = checkpoint.id
        report = staging.restorer.report
        yield bpb.Response(id=request.id, last=True, stage_done=bpb.StageDone(
            rounds=report.rounds, pages_written=report.pages_written))

    def _on_stage_status(self, request: bpb.Request) -> Iterator[bpb.Response]:
        session = request.stage_status.session
        staging = self._staging(session)
        assembler = staging.assembler
        yield bpb.Response(id=request.id, last=True, stage_status=bpb.StageStatus(
            session=session, checkpoint_id=assembler.manifest.id if assembler else "",
            parts=staging.parts if assembler else 0, last_staged_id=staging.last_staged_id,
            rounds=staging.restorer.report.rounds))

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


def _batch(lines: list, start: int) -> list:
    """Lines from ``start`` for one LogLines: at most LOG_BATCH lines and about
    LOG_BATCH_BYTES of text, never none while any are left."""
    batch, size = [], 0
    for entry in lines[start:start + LOG_BATCH]:
        size += len(entry.text.encode())
        if batch and size > LOG_BATCH_BYTES:
            break
        batch.append(entry)
    return batch
