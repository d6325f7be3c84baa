"""The agent side of the board protocol: a board's CR component as calls.

    with BoardClient.connect("socket://127.0.0.1:4555") as board:
        board.start("counter")
        packed = board.checkpoint_packed("counter", freeze=True)
    with BoardClient.connect("socket://127.0.0.1:4556") as target:
        target.restore(packed)

Pages pass through compressed: ``checkpoint_packed`` keeps the Page messages
the board sent and ``stage``/``restore`` send them on as they are; only the
target board decompresses them (``checkpoint`` unpacks, for callers that want
the raw pages).

Every call has a deadline; a dead link, a board that restarted and a board
that does not answer all raise BoardUnreachable, and an error the board
reports is raised as the same GenodeCrError subclass it was on the board.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import serial
from google.protobuf.message import DecodeError

from . import wire
from .checkpoint import PAGE_SIZE, Checkpoint, PackedCheckpoint, order_chain
from .errors import BoardUnreachable, ProtocolError, RequestError, error_from_code
from .link import BlockingLink, LinkDead, LinkReset, LocalLinkError
from .model import ComponentInfo, RestoreReport
from .protocol import PROTOCOL_VERSION
from .v1 import board_pb2 as bpb

__all__ = ["BoardClient", "LogLine", "Progress"]

#: progress(done_bytes, total_bytes): uncompressed page bytes moved so far.
Progress = Callable[[int, int], None]

DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class LogLine:
    index: int
    time_us: int
    text: str


class BoardClient:
    def __init__(self, link: BlockingLink, *, timeout: float = DEFAULT_TIMEOUT,
                 client: str = "genode-cr", label: str = "board"):
        self.link = link
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._label = label           # how errors name the board until it has said its name
        reply = self._call(hello=bpb.Hello(protocol_version=PROTOCOL_VERSION, client=client))
        self.info: bpb.BoardInfo = reply.board_info
        self._label = self.info.name

    @classmethod
    def connect(cls, url: str, *, baud: int | None = None, pace: bool = False,
                timeout: float = DEFAULT_TIMEOUT, connect_timeout: float = 10.0) -> BoardClient:
        """``baud`` sets a serial device's rate; ``pace`` also holds our writes to it."""
        with _link_errors(url):
            try:
                link = BlockingLink.open(url, baud=baud, pace=pace,
                                         connect_timeout=connect_timeout)
            except serial.SerialException as error:   # refused, no such device, ...
                raise BoardUnreachable(str(error)) from error
        try:
            return cls(link, timeout=timeout, label=url)
        except BaseException:
            link.close()
            raise

    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> BoardClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- requests and responses ---------------------------------------------------------

    def _send(self, **body) -> int:
        request_id = next(self._ids)
        with _link_errors(self._label):
            self.link.send(bpb.Request(id=request_id, **body).SerializeToString(),
                           timeout=self.timeout)
        return request_id

    def _responses(self, request_id: int, timeout: float | None = None) -> Iterator[bpb.Response]:
        while True:
            with _link_errors(self._label):
                try:
                    payload = self.link.receive(timeout=timeout or self.timeout)
                except TimeoutError:
                    raise BoardUnreachable(f"board did not answer within "
                                           f"{timeout or self.timeout:g} s") from None
            response = bpb.Response()
            try:
                response.ParseFromString(payload)
            except DecodeError as error:
                raise ProtocolError(f"undecodable response from the board: {error}") from error
            if response.id != request_id and response.id != 0:
                continue                # a late answer to an abandoned request
            if response.WhichOneof("body") == "error":
                raise error_from_code(response.error.code, response.error.message)
            yield response
            if response.last:
                return

    def _call(self, **body) -> bpb.Response:
        request_id = self._send(**body)
        *_, last = self._responses(request_id)
        return last

    # --- the CR component's operations --------------------------------------------------

    def hello(self) -> bpb.BoardInfo:
        self.info = self._call(hello=bpb.Hello(protocol_version=PROTOCOL_VERSION)).board_info
        return self.info

    def components(self) -> list[ComponentInfo]:
        reply = self._call(list_components=bpb.Empty())
        return [wire.component_from_pb(c) for c in reply.components.components]

    def start(self, name: str, rom: str | None = None, *, ram_quota: int = 0,
              cap_quota: int = 0, config: str = "") -> ComponentInfo:
        """``config`` is the content of the component's "config" ROM."""
        reply = self._call(start=bpb.StartRequest(name=name, rom=rom or name, ram_quota=ram_quota,
                                                  cap_quota=cap_quota, config=config))
        return wire.component_from_pb(reply.component)

    def pause(self, name: str) -> ComponentInfo:
        return wire.component_from_pb(
            self._call(pause=bpb.ComponentRequest(name=name)).component)

    def resume(self, name: str) -> ComponentInfo:
        return wire.component_from_pb(
            self._call(resume=bpb.ComponentRequest(name=name)).component)

    def kill(self, name: str) -> None:
        self._call(kill=bpb.ComponentRequest(name=name))

    def logs(self, name: str, from_index: int = 0) -> list[LogLine]:
        request_id = self._send(logs=bpb.LogsRequest(name=name, from_index=from_index))
        return [line for r in self._responses(request_id) for line in _lines(r)]

    def follow_logs(self, name: str, from_index: int = 0,
                    idle_timeout: float | None = None) -> Iterator[LogLine]:
        """Streams log lines as they come; close the iterator to stop."""
        request_id = self._send(logs=bpb.LogsRequest(name=name, from_index=from_index,
                                                     follow=True))
        try:
            for response in self._responses(request_id, timeout=idle_timeout or 3600.0):
                yield from _lines(response)
        finally:
            with contextlib.suppress(Exception):
                cancel = self._send(cancel=bpb.Cancel(request_id=request_id))
                for _ in self._responses(cancel, timeout=5.0):
                    pass

    def checkpoint_parts(self, name: str, *,
                         since: Checkpoint | PackedCheckpoint | str | None = None,
                         freeze: bool = False, resume_id: str = "", from_part: int = 0
                         ) -> Iterator[wire.StreamMessage]:
        """The checkpoint's stream as the board sends it: start, page chunks, end.

        ``resume_id``: a stream that broke, again from part ``from_part`` (0 the
        start, then the chunks, then the end), from the board's copy of that
        checkpoint (the last one taken of ``name``); nothing is captured again.
        Parts are in order; their contents are not checked here.
        """
        since_id = since if isinstance(since, str) else (since.id if since else "")
        request_id = self._send(checkpoint=bpb.CheckpointRequest(
            name=name, since_id=since_id, freeze=freeze, resume_id=resume_id,
            from_part=from_part if resume_id else 0))
        started = bool(resume_id) and from_part > 0    # a resumed stream has started before
        for response in self._responses(request_id):
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
                raise ProtocolError(f"unexpected {kind} in a checkpoint stream")
        raise ProtocolError("checkpoint stream ended early")

    def checkpoint_packed(self, name: str, *,
                          since: Checkpoint | PackedCheckpoint | str | None = None,
                          freeze: bool = False, progress: Progress | None = None
                          ) -> PackedCheckpoint:
        """The checkpoint as the board sent it, pages compressed; its root digest and
        each page's shape are checked (``verify_root``), not the page contents."""
        assembler: wire.PackedAssembler | None = None
        total = 0
        for message in self.checkpoint_parts(name, since=since, freeze=freeze):
            if isinstance(message, bpb.CheckpointStart):
                assembler = wire.PackedAssembler(message)
                total = message.page_bytes
                if progress:
                    progress(0, total)
            elif isinstance(message, bpb.PageChunk):
                assert assembler is not None
                assembler.add(message)
                if progress:
                    progress(len(assembler.pages) * PAGE_SIZE, total)
            else:
                assert assembler is not None
                return assembler.finish(message)
        raise AssertionError("checkpoint_parts ends with the CheckpointEnd")

    def checkpoint(self, name: str, *, since: Checkpoint | PackedCheckpoint | str | None = None,
                   freeze: bool = False, progress: Progress | None = None) -> Checkpoint:
        """The checkpoint with its pages decompressed, every one verified."""
        return self.checkpoint_packed(name, since=since, freeze=freeze,
                                      progress=progress).unpack()

    # --- restore, as the coordinator drives it ----------------------------------------------

    def begin_restore(self, name: str | None = None) -> int:
        return self._call(restore_begin=bpb.RestoreBegin(name=name or "")).restore_session.session

    def stage(self, session: int, checkpoint: PackedCheckpoint | Checkpoint,
              progress: Progress | None = None, *, from_part: int = 0) -> bpb.StageDone:
        """Sends one checkpoint of a restore. A packed one goes as it is (the board
        verifies it); a raw one is compressed once, here. ``from_part``: a stage
        that broke goes on from the first part the board lacks
        (``stage_status(session).parts``)."""
        packed = _packed(checkpoint)
        pages = len(packed.pages)
        count = -(-pages // wire.PAGES_PER_CHUNK) + 2    # start, chunks, end
        if not 0 <= from_part < count:
            raise RequestError(f"checkpoint {packed.id} has parts 0 to {count - 1}, "
                               f"not {from_part}")
        total = pages * PAGE_SIZE
        done = min(max(from_part - 1, 0) * wire.PAGES_PER_CHUNK, pages) * PAGE_SIZE

        def reported() -> Iterator[wire.StreamMessage]:
            nonlocal done
            for part in itertools.islice(wire.packed_messages(packed), from_part, None):
                yield part
                if isinstance(part, bpb.PageChunk):
                    done += len(part.pages) * PAGE_SIZE
                    if progress:
                        progress(done, total)

        staged = self.stage_parts(session, reported(), resume=from_part > 0)
        assert staged is not None, "packed_messages ends with the CheckpointEnd"
        return staged

    def stage_parts(self, session: int, parts: Iterable[wire.StreamMessage], *,
                    resume: bool = False) -> bpb.StageDone | None:
        """Sends parts of one checkpoint's stream as they come: from its start, or,
        with ``resume``, from the first part the board lacks (a page chunk or the
        end). Returns the board's StageDone after the end; None if the parts stop
        before it, and the stage goes on with another call (``resume=True``).
        Parts out of order raise RequestError."""
        started = resume
        for part in parts:
            if isinstance(part, bpb.CheckpointStart):
                if started:
                    raise RequestError("a resumed stage goes on from a page chunk or the end, "
                                       "not a CheckpointStart" if resume else
                                       "a second CheckpointStart in one staged checkpoint")
                self._call(stage_start=bpb.StageStart(session=session, checkpoint=part))
                started = True
            elif not started:
                raise RequestError(f"a staged checkpoint must begin with its CheckpointStart, "
                                   f"not a {type(part).__name__}")
            elif isinstance(part, bpb.PageChunk):
                self._send(stage_pages=bpb.StagePages(session=session, chunk=part))
            elif isinstance(part, bpb.CheckpointEnd):
                return self._call(stage_end=bpb.StageEnd(session=session, end=part)).stage_done
            else:
                raise RequestError(f"not a checkpoint message: {type(part).__name__}")
        return None

    def stage_status(self, session: int) -> bpb.StageStatus:
        """Where ``session`` stands: what a broken stage must resume from."""
        return self._call(stage_status=bpb.RestoreSession(session=session)).stage_status

    def commit_restore(self, session: int) -> RestoreReport:
        return wire.report_from_pb(
            self._call(restore_commit=bpb.RestoreSession(session=session)).restore_report)

    def abort_restore(self, session: int) -> None:
        self._call(restore_abort=bpb.RestoreSession(session=session))

    def restore(self, checkpoints: PackedCheckpoint | Checkpoint
                | Iterable[PackedCheckpoint | Checkpoint], *, name: str | None = None,
                progress: Progress | None = None) -> RestoreReport:
        """Stages a checkpoint chain and commits it; aborts on any failure."""
        single = isinstance(checkpoints, (Checkpoint, PackedCheckpoint))
        chain = order_chain([checkpoints] if single else checkpoints)
        session = self.begin_restore(name)
        try:
            for checkpoint in chain:
                self.stage(session, checkpoint, progress)
            return self.commit_restore(session)
        except BaseException:
            with contextlib.suppress(Exception):
                self.abort_restore(session)
            raise


def _packed(checkpoint: PackedCheckpoint | Checkpoint) -> PackedCheckpoint:
    return checkpoint if isinstance(checkpoint, PackedCheckpoint) \
        else PackedCheckpoint.pack(checkpoint)


def _lines(response: bpb.Response) -> list[LogLine]:
    batch = response.log_lines
    first = batch.next_index - len(batch.lines)
    return [LogLine(first + i, line.time_us, line.text) for i, line in enumerate(batch.lines)]


@contextlib.contextmanager
def _link_errors(board: str) -> Iterator[None]:
    try:
        yield
    except LinkReset as error:
        raise BoardUnreachable(f"{board}: the board restarted; the request was lost "
                               f"({error})") from error
    except (LinkDead, LocalLinkError) as error:
        raise BoardUnreachable(f"{board}: {error}") from error
