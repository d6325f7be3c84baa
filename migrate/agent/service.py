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

Restore sessions outlive what carries them: the board keeps a session when
the agent's link drops (docs/board-protocol.md 4.5), and a stage stream that
breaks leaves its session as it was, for the caller to resume from where the
board stopped (``resume_from_part``, ``stage_status``) or abort. Malformed
content and refusals still abort it; so does ``session_idle_timeout`` without
any use, so that a caller that vanished cannot hold the board's quota.

Checkpoints are signed (docs/security.md, "Signed checkpoints"): with a
``signer`` the agent signs every checkpoint it streams (a ``Signature`` right
after the CheckpointStart, which announces the root digest); a checkpoint it is asked to stage must come with a
signature by one of its ``trusted`` signers over the root digest the stream
announces, checked before any part reaches the board, and its CheckpointEnd
must repeat that root (the board checks every page and the manifest against
it). Only an agent started with ``allow_unsigned`` (plaintext on loopback)
stages unsigned checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import AsyncIterable, AsyncIterator, Iterator

from genode_cr.aio_client import AsyncBoardClient, CheckpointMessage
from genode_cr.errors import BoardUnreachable, GenodeCrError
from genode_cr.model import ComponentInfo, RestoreReport
from genode_cr.v1 import board_pb2 as bpb

from ..errors import (CheckpointSignatureInvalid, CheckpointSignerUnknown, CheckpointUnsigned,
                      NotFound, PreconditionFailed, RequestError, Unavailable,
                      UntrustedCheckpoint)
# Bounds on what a caller may send, so that no request makes the agent or the board work
# (or hold memory) without limit; named once, in migrate.limits.
from ..limits import (MAX_CAP_QUOTA, MAX_CHUNK_BYTES, MAX_CHUNK_PAGES, MAX_CONFIG_BYTES,
                      MAX_ID_LENGTH, MAX_NAME_LENGTH, MAX_RAM_QUOTA)
from ..security.signing import CheckpointStatement, Signature, Signer, TrustedSigners
from .connection import BoardConnection
from .fencing import Fences

__all__ = ["AgentService", "BoardStatus", "DEFAULT_SESSION_IDLE_TIMEOUT", "MAX_NAME_LENGTH"]

log = logging.getLogger(__name__)

#: Seconds a restore session may go unused before the agent aborts it.
DEFAULT_SESSION_IDLE_TIMEOUT = 300.0
#: Ended restore sessions remembered, so that a replayed commit is refused by name.
ENDED_SESSIONS_KEPT = 1024


@dataclass(frozen=True)
class BoardStatus:
    """The board as last seen (``info`` None: never reached) and whether its link is up."""
    info: bpb.BoardInfo | None
    healthy: bool
    detail: str


@dataclass
class _Session:
    component: str          # "" until the name or the first staged manifest says
    used_at: float          # the loop's clock at its last use, for the idle timeout
    staging_id: str = ""    # the checkpoint whose parts were forwarded last, until staged
    staging_root: bytes = b""   # the root digest its verified signature vouches for
    # Held while a part is on its way to the board, so that a stream resuming the
    # session asks where it stands only after every part forwarded before.
    forwarding: asyncio.Lock = field(default_factory=asyncio.Lock)


class _StreamEnded(RequestError):
    """A stage stream that stopped before its CheckpointEnd: broken, not malformed."""


def _check_name(value: str, what: str = "name", *, required: bool = True) -> str:
    if not value:
        if required:
            raise RequestError(f"{what} is required")
        return value
    if len(value) > MAX_NAME_LENGTH or not value.isprintable():
        raise RequestError(f"{what} must be at most {MAX_NAME_LENGTH} printable characters")
    return value


def _check_id(value: str, what: str) -> str:
    if len(value) > MAX_ID_LENGTH or not value.isprintable():
        raise RequestError(f"{what} must be at most {MAX_ID_LENGTH} printable characters")
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
    def __init__(self, connection: BoardConnection, *,
                 session_idle_timeout: float = DEFAULT_SESSION_IDLE_TIMEOUT,
                 signer: Signer | None = None, trusted: TrustedSigners | None = None,
                 allow_unsigned: bool = False):
        self.connection = connection
        self.signer = signer
        self.trusted = trusted or TrustedSigners()
        self.allow_unsigned = allow_unsigned
        # component -> (checkpoint id, parent id) of the last checkpoint it streamed, so
        # that a resumed stream, which starts after the manifest, can still be signed.
        self._streamed: dict[str, tuple[str, str]] = {}
        self.fences = Fences()
        self.session_idle_timeout = session_idle_timeout
        self._sessions: dict[int, _Session] = {}
        # session -> how it ended ("committed", "aborted", ...), oldest first, bounded
        self._ended: dict[int, str] = {}
        self._cleanups: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None

    @property
    def board_name(self) -> str:
        return self.connection.board_name

    def _client(self) -> AsyncBoardClient:
        return self.connection.client()

    async def close(self) -> None:
        """Stops watching for idle sessions; lets the aborts under way finish (briefly)."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
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
                         generation: int = 0, resume_id: str = "", resume_from_part: int = 0
                         ) -> AsyncIterator[CheckpointMessage | Signature]:
        """The board's checkpoint messages, each passed on as it arrives, and (with a
        signer) the agent's signature over the checkpoint right after its start.

        ``resume_id``: a stream that broke, again from part ``resume_from_part``
        of the board's copy of that checkpoint (its last one of ``name``)."""
        _check_name(name)
        _check_id(since_id, "since_id")
        _check_id(resume_id, "resume_id")
        self.fences.admit(name, generation)
        client = self._client()
        with _unavailable_when_unreachable():
            async with contextlib.aclosing(client.checkpoint_stream(
                    name, since_id=since_id, freeze=freeze, resume_id=resume_id,
                    from_part=resume_from_part)) as messages:
                signed = False
                async for message in messages:
                    if isinstance(message, bpb.CheckpointStart):
                        self._streamed[name] = (message.manifest.id, message.manifest.parent_id)
                    yield message
                    # Signed as soon as the root is known: right after a start that
                    # announces it, so the coordinator can stage it on the target while
                    # the pages still come; after the end from a board that does not.
                    root = (message.root_digest
                            if isinstance(message, (bpb.CheckpointStart, bpb.CheckpointEnd))
                            else b"")
                    if root and not signed and self.signer is not None:
                        signature = self._sign(name, resume_id, root)
                        signed = True
                        if signature is not None:
                            yield signature

    def _sign(self, name: str, resume_id: str, root_digest: bytes) -> Signature | None:
        assert self.signer is not None
        checkpoint_id, parent_id = self._streamed.get(name, ("", ""))
        if resume_id and resume_id != checkpoint_id:
            # Resumed after this agent restarted: it never saw the manifest, and signs
            # nothing it has not seen. The receiver refuses the unsigned checkpoint.
            log.warning("not signing checkpoint %s of %s: its start went through another "
                        "run of this agent", resume_id, name)
            return None
        return self.signer.sign(CheckpointStatement(name, checkpoint_id, parent_id, root_digest))

    # --- restores ---------------------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def begin_restore(self, name: str = "") -> int:
        _check_name(name, required=False)
        with _unavailable_when_unreachable():
            session = await self._client().begin_restore(name or None)
        self._sessions[session] = _Session(name, self._now())
        self._ended.pop(session, None)          # a restarted board may number anew
        self._watch_idle_sessions()
        return session

    def _end(self, session: int, how: str) -> None:
        if self._sessions.pop(session, None) is None:
            return
        self._ended[session] = how
        while len(self._ended) > ENDED_SESSIONS_KEPT:
            del self._ended[next(iter(self._ended))]

    def _session(self, session: int) -> _Session:
        if session == 0:
            raise RequestError("session is required")
        record = self._sessions.get(session)
        if record is None:
            raise NotFound(f"no restore session {session} on {self.board_name}")
        record.used_at = self._now()
        return record

    async def stage(self, session: int, parts: AsyncIterable[CheckpointMessage], *,
                    resume_from_part: int = 0, signature: Signature | None = None,
                    root_digest: bytes = b"") -> bpb.StageDone:
        """Stages one checkpoint of a chain, forwarding its parts as they arrive.

        The parts must be a CheckpointStart, page chunks, a CheckpointEnd, and
        nothing after. ``resume_from_part`` k > 0: they go on with the
        checkpoint whose stage broke, from its part k (a page chunk or the
        end), which must be the number of parts the board has
        (``stage_status``; else PreconditionFailed RESUME_MISMATCH).

        A stream that breaks (cancelled, ended early, the board link dropped)
        leaves the session as it is, to be resumed or aborted. Malformed parts
        or a refusal by the board abort it: the board drops what was staged and
        keeps running; the caller begins a new session.

        ``signature`` and ``root_digest`` (with a new checkpoint, not a resumed one):
        the checkpoint's signature by a trusted signer over that root, verified with
        its CheckpointStart before anything reaches the board; an unsigned or
        untrusted one aborts the session (UntrustedCheckpoint).
        """
        record = self._session(session)
        incoming = aiter(parts)
        try:
            if resume_from_part:
                await self._check_resume(session, record, resume_from_part)
            async with contextlib.aclosing(self._ordered(
                    incoming, record, resume=resume_from_part > 0, signature=signature,
                    root_digest=root_digest)) as ordered:
                with _unavailable_when_unreachable():
                    done = await self._client().stage_stream(session, ordered,
                                                             resume=resume_from_part > 0)
            record.staging_id = ""
            if await anext(incoming, None) is not None:
                raise RequestError("a staged checkpoint goes on after its CheckpointEnd")
        except UntrustedCheckpoint:
            self._abort_in_background(session)
            raise
        except (_StreamEnded, PreconditionFailed, Unavailable, BoardUnreachable):
            raise                        # broken, not wrong: for the caller to resume or abort
        except (RequestError, GenodeCrError):
            self._abort_in_background(session)
            raise
        finally:
            record.used_at = self._now()
        return done

    async def _check_resume(self, session: int, record: _Session, first_part: int) -> None:
        async with record.forwarding:            # after every part already on its way
            with _unavailable_when_unreachable():
                status = await self._client().stage_status(session)
        if status.parts != first_part or (record.staging_id
                                          and status.checkpoint_id != record.staging_id):
            raise PreconditionFailed(
                f"restore session {session} on {self.board_name} cannot go on from part "
                f"{first_part}: the board has {status.parts} part(s) of "
                f"{status.checkpoint_id or 'no checkpoint'}"
                f"{f' (expected {record.staging_id})' if record.staging_id else ''}; "
                f"last staged: {status.last_staged_id or 'nothing'}",
                reason="RESUME_MISMATCH",
                metadata={"parts": str(status.parts), "last_staged_id": status.last_staged_id,
                          "checkpoint_id": status.checkpoint_id})

    async def _ordered(self, parts: AsyncIterator[CheckpointMessage], record: _Session, *,
                       resume: bool = False, signature: Signature | None = None,
                       root_digest: bytes = b"") -> AsyncIterator[CheckpointMessage]:
        """The parts, checked to form one checkpoint (or, resuming, its rest); ends
        with its CheckpointEnd."""
        started = resume
        async for part in parts:
            if isinstance(part, bpb.CheckpointStart):
                if started:
                    raise RequestError("a resumed stage goes on from a page chunk or the "
                                       "end, not a CheckpointStart" if resume else
                                       "a second CheckpointStart in one staged checkpoint")
                # Before the board sees any of it: who vouches for this checkpoint.
                record.staging_root = self._vet(part.manifest, signature, root_digest)
                started = True
                record.component = record.component or part.manifest.component
                record.staging_id = part.manifest.id
            elif not started:
                raise RequestError(f"a staged checkpoint must begin with its CheckpointStart, "
                                   f"not a {type(part).__name__}")
            elif isinstance(part, bpb.PageChunk):
                _check_chunk(part)
            elif not isinstance(part, bpb.CheckpointEnd):
                raise RequestError(f"not a checkpoint part: {type(part).__name__}")
            elif record.staging_root and part.root_digest != record.staging_root:
                raise CheckpointSignatureInvalid(
                    f"checkpoint {record.staging_id} ends with another root digest than the "
                    "one its signature vouches for")
            record.used_at = asyncio.get_running_loop().time()
            async with record.forwarding:          # held until the board has it
                yield part
            if isinstance(part, bpb.CheckpointEnd):
                return
        if started:
            raise _StreamEnded("the staged checkpoint ended before its CheckpointEnd; go on "
                               "from the part GetStageStatus reports, or abort the session")
        raise RequestError("an empty staged checkpoint")

    def _vet(self, manifest, signature: Signature | None,  # type: ignore[no-untyped-def]
             root_digest: bytes) -> bytes:
        """The root digest a trusted signature vouches for (b"" for an unsigned checkpoint
        this agent may stage); raises UntrustedCheckpoint otherwise."""
        statement = CheckpointStatement.of(manifest, root_digest)
        if signature is None:
            if self.allow_unsigned:
                return b""
            raise CheckpointUnsigned(
                f"{statement} comes unsigned; the agent of {self.board_name} stages only "
                "checkpoints signed by a signer it trusts"
                + ("" if self.trusted else " (and it trusts none: --trusted-signers)"))
        if len(root_digest) != 32:
            raise CheckpointSignatureInvalid(f"{statement} is signed but its stage announces "
                                             "no root digest")
        if not self.trusted:
            raise CheckpointSignerUnknown(
                f"{statement} is signed by {signature.signer}, but the agent of "
                f"{self.board_name} trusts no signers (--trusted-signers)",
                metadata={"signer": signature.signer.uri})
        signer = self.trusted.verify(statement, signature)
        log.info("staging %s, signed by %s", statement, signer)
        return root_digest

    async def stage_status(self, session: int) -> bpb.StageStatus:
        """Where the session stands on the board: where a broken stage goes on."""
        self._session(session)
        with _unavailable_when_unreachable():
            return await self._client().stage_status(session)

    async def commit_restore(self, session: int, *, generation: int = 0) -> RestoreReport:
        """Commits: when it returns, the component runs. Nothing more is asked of the
        board here: during a move every round trip after the commit was downtime.

        A commit replayed for a session that already ended (committed, aborted) is
        refused (PreconditionFailed RESTORE_SESSION_ENDED) without reaching the board."""
        if session in self._ended and session not in self._sessions:
            raise PreconditionFailed(
                f"restore session {session} on {self.board_name} was {self._ended[session]} "
                "already; a commit is not replayed", reason="RESTORE_SESSION_ENDED",
                metadata={"session": str(session), "ended": self._ended[session]})
        record = self._session(session)
        if record.component:
            self.fences.admit(record.component, generation)
        try:
            with _unavailable_when_unreachable():
                report = await self._client().commit_restore(session)
        except (Unavailable, asyncio.CancelledError):
            raise       # the board may not have had it: the session stays, to commit again
        except BaseException:
            self._end(session, "refused at its commit")  # the board ends it whatever the outcome
            raise
        self._end(session, "committed")
        return report

    async def abort_restore(self, session: int) -> None:
        if session == 0:
            raise RequestError("session is required")
        self._end(session, "aborted")
        with _unavailable_when_unreachable():
            await self._client().abort_restore(session)

    def expire_idle_sessions(self, now: float) -> list[int]:
        """Aborts the sessions unused for ``session_idle_timeout`` seconds at ``now``
        (the loop's clock); returns their numbers."""
        idle = [session for session, record in self._sessions.items()
                if now - record.used_at >= self.session_idle_timeout]
        for session in idle:
            log.info("restore session %s on %s unused for %g s; aborting it", session,
                     self.board_name, self.session_idle_timeout)
            self._abort_in_background(session)
        return idle

    def _watch_idle_sessions(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(
                self._reap_idle_sessions(), name=f"idle restore sessions of {self.board_name}")

    async def _reap_idle_sessions(self) -> None:
        interval = min(max(self.session_idle_timeout / 4, 0.05), 10.0)
        while True:
            await asyncio.sleep(interval)
            self.expire_idle_sessions(self._now())

    def _abort_in_background(self, session: int) -> None:
        """Aborts a session even when the call that failed is being cancelled."""
        if session not in self._sessions:
            return
        self._end(session, "aborted")
        task = asyncio.get_running_loop().create_task(self._abort_quietly(session))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _abort_quietly(self, session: int) -> None:
        try:
            await self._client().abort_restore(session)
        except Exception as error:   # the board aborts it anyway once its orphan timeout ends
            log.info("aborting restore session %s on %s: %s", session, self.board_name, error)
