"""The coordinator's domain: the fleet's components, their logs wherever they
run, stored checkpoints, and restores from the store (failover). Moves live in
``moves.py``. No grpc here: the servicer converts and maps errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator

from genode_cr.v1 import board_pb2 as bpb
from genode_cr.wire import PAGES_PER_CHUNK
from genode_cr.v1 import checkpoint_pb2 as cpb

from .. import errors
from ..security.signing import CheckpointStatement, Signature
from ..store import CheckpointMeta, CheckpointStore, VerifyResult
from ..v1 import resources_pb2 as rpb
from .fleet import Fleet
from .moves import MoveEngine

__all__ = ["CoordinatorService"]

log = logging.getLogger(__name__)

#: How long a log follower waits for a moved component to appear on its new board.
FOLLOW_SETTLE_S = 30.0


class CoordinatorService:
    def __init__(self, fleet: Fleet, engine: MoveEngine, checkpoints: CheckpointStore, *,
                 retention: int = 5):
        self.fleet = fleet
        self.engine = engine
        self.checkpoints = checkpoints
        self.store = engine.store
        self.retention = retention

    # --- boards and components ------------------------------------------------------------

    def boards(self) -> list[rpb.Board]:
        return [state.to_pb() for _, state in sorted(self.fleet.boards.items())]

    async def components(self, board: str = "") -> tuple[list[rpb.Component], list[str]]:
        states = [self.fleet.board(board)] if board else list(self.fleet.boards.values())

        async def ask(state):  # type: ignore[no-untyped-def]
            try:
                return state.name, await state.agent.components()
            except errors.MigrateError:
                return state.name, None

        found, unreachable = [], []
        for name, listed in await asyncio.gather(*(ask(s) for s in states)):
            if listed is None:
                unreachable.append(name)
                continue
            for component in listed:
                component.board = name
                found.append(component)
        return sorted(found, key=lambda c: (c.name, c.board)), sorted(unreachable)

    async def start(self, name: str, rom: str, board: str, *, ram_quota: int = 0,
                    cap_quota: int = 0, config: str = "") -> rpb.Component:
        _check_name(name)
        agent = self.fleet.agent(board)
        owner = self.store.owner(name)
        if owner is not None and owner.board != board and await self._runs_on(owner.board, name):
            raise errors.AlreadyExists(f"{name} already runs on {owner.board}: one copy only",
                                       reason="NAME_IN_USE")
        generation = (owner.generation if owner else 0) + 1
        component = await agent.start(name, rom or name, ram_quota=ram_quota,
                                      cap_quota=cap_quota, config=config,
                                      generation=generation)
        self.store.set_owner(name, board, generation)
        component.board = board
        return component

    async def _runs_on(self, board: str, name: str) -> bool:
        """Whether the board runs the component; a board that is away may."""
        try:
            return await self.fleet.agent(board).find(name) is not None
        except errors.Unavailable:
            return True

    async def kill(self, name: str) -> str:
        if (move := self.engine.moving(name)) is not None:
            raise errors.AlreadyMoving(f"{name} is moving (move {move}); cancel it first")
        board = await self.engine.locate(name)
        generation = self.engine.generation(name)
        await self.fleet.agent(board).kill(name, generation)
        # The owner record stays: a component started again under this name gets the
        # next generation, which agents that saw this one accept.
        return board

    async def logs(self, name: str, *, follow: bool = False, tail: int = 0
                   ) -> AsyncIterator[rpb.LogLine]:
        """The component's log from wherever it runs; with follow, it goes on
        from the next board when the component moves."""
        board = await self.engine.locate(name)
        start = 0
        if tail:
            history = [line async for line in self.fleet.agent(board).logs(name)]
            start = max(0, len(history) - tail)
        while True:
            stream = self.fleet.agent(board).logs(name, from_index=start, follow=follow)
            try:
                async for line in _until(stream, lambda: self._moved_away(name, board)):
                    line.board = board
                    yield line
            except errors.MigrateError as error:
                if not follow:
                    raise
                log.debug("log stream of %s on %s ended: %s", name, board, error)
            if not follow:
                return
            board, start = await self._next_board(name, board), 0

    def _moved_away(self, name: str, board: str) -> bool:
        owner = self.store.owner(name)
        return owner is None or owner.board != board

    async def _next_board(self, name: str, board: str) -> str:
        """After a follower's stream ended: where the component runs now."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FOLLOW_SETTLE_S
        while loop.time() < deadline:
            owner = self.store.owner(name)
            if owner is not None and owner.board != board and self.engine.moving(name) is None:
                return owner.board
            if owner is None and self.engine.moving(name) is None:
                raise errors.NotFound(f"{name} no longer runs anywhere",
                                      reason="UNKNOWN_COMPONENT")
            await asyncio.sleep(0.2)
        raise errors.Unavailable(f"the log of {name} on {board} ended and it did not "
                                 f"appear elsewhere within {FOLLOW_SETTLE_S:g} s")

    # --- checkpoints ----------------------------------------------------------------------

    async def create_checkpoint(self, component: str, *, full: bool = False) -> CheckpointMeta:
        if (move := self.engine.moving(component)) is not None:
            raise errors.AlreadyMoving(f"{component} is moving (move {move})")
        board = await self.engine.locate(component)
        last = None if full else self.store.latest_checkpoint(component)
        since = last.id if last is not None and last.board == board else ""
        try:
            return await self._store_checkpoint(component, board, since)
        except errors.MigrateError:
            raise
        except Exception as error:  # noqa: BLE001 - e.g. the board's history moved on
            if not since or errors.status_of(error) != "FAILED_PRECONDITION":
                raise
            log.info("incremental checkpoint of %s refused (%s); taking a full one",
                     component, error)
            return await self._store_checkpoint(component, board, "")

    async def _store_checkpoint(self, component: str, board: str, since: str) -> CheckpointMeta:
        agent = self.fleet.agent(board)
        manifest: cpb.Manifest | None = None
        pages: list[cpb.Page] = []
        root = b""
        signature: Signature | None = None
        async for part in agent.checkpoint(component, since_id=since,
                                           generation=self.engine.generation(component)):
            if isinstance(part, Signature):
                signature = part
            elif isinstance(part, bpb.CheckpointStart):
                manifest = part.manifest
            elif isinstance(part, bpb.PageChunk):
                pages.extend(part.pages)
            else:
                root = part.root_digest
        if manifest is None or not root:
            raise errors.DataLoss(f"the checkpoint stream of {component} from {board} ended early")
        # Who made it, before it is stored: the agent's signature, then ours beside it.
        provenance = self.engine.provenance
        statement = CheckpointStatement.of(manifest, root)
        provenance.check_received(board, statement, signature)
        signatures = [s for s in (signature, provenance.sign(statement)) if s is not None]
        meta = await asyncio.to_thread(self.checkpoints.save, manifest, root, pages, board=board,
                                       signatures=signatures)
        await asyncio.to_thread(self.checkpoints.apply_retention, component, self.retention)
        return meta

    def list_checkpoints(self, component: str = "", *, limit: int = 100,
                         before: str | None = None) -> list[CheckpointMeta]:
        return self.store.list_checkpoints(component or None, limit=limit, before=before)

    def get_checkpoint(self, checkpoint_id: str) -> tuple[CheckpointMeta, cpb.Manifest]:
        meta = self.store.get_checkpoint(checkpoint_id)
        if meta is None:
            raise errors.NotFound(f"no checkpoint {checkpoint_id!r}",
                                  reason="UNKNOWN_CHECKPOINT")
        manifest = cpb.Manifest()
        manifest.ParseFromString(self.store.get_manifest(checkpoint_id))
        return meta, manifest

    async def verify_checkpoint(self, checkpoint_id: str) -> VerifyResult:
        self.get_checkpoint(checkpoint_id)
        return await asyncio.to_thread(self.checkpoints.verify, checkpoint_id)

    async def delete_checkpoint(self, checkpoint_id: str) -> tuple[list[str], int]:
        self.get_checkpoint(checkpoint_id)
        return await asyncio.to_thread(self.checkpoints.delete, checkpoint_id)

    async def restore_checkpoint(self, checkpoint_id: str, target: str, name: str = ""
                                 ) -> tuple[rpb.Component, bpb.RestoreReport]:
        """Failover: the stored chain up to this checkpoint, restored on ``target``."""
        meta, _ = self.get_checkpoint(checkpoint_id)
        component = name or meta.component
        _check_name(component)
        if (move := self.engine.moving(component)) is not None:
            raise errors.AlreadyMoving(f"{component} is moving (move {move})")
        agent = self.fleet.agent(target)
        result = await self.verify_checkpoint(checkpoint_id)
        if not result.ok:
            raise errors.DataLoss(f"checkpoint {checkpoint_id} does not verify: {result.detail}")
        # Every link's signature, checked before the target's board is asked for anything.
        chain = self.checkpoints.chain(checkpoint_id)
        signatures = {}
        for link in chain:
            statement = CheckpointStatement.of(self.checkpoints.manifest(link.id),
                                               link.root_digest)
            signatures[link.id] = self.engine.provenance.for_stored(link, statement)
        owner = self.store.owner(component)
        if owner is not None:
            running = None
            with contextlib.suppress(errors.MigrateError):
                running = await self.fleet.agent(owner.board).find(component)
            if running is not None and running.state in ("running", "paused"):
                raise errors.PreconditionFailed(
                    f"{component} still runs on {owner.board}: move it, or kill it first",
                    reason="STILL_RUNNING")
        generation = (owner.generation if owner else 0) + 1
        session = await agent.begin_restore(name)
        try:
            for link in chain:
                manifest, root, pages = await asyncio.to_thread(self.checkpoints.load, link.id)
                writer = agent.open_stage(session, signature=signatures[link.id],
                                          root_digest=root)
                try:
                    await writer.write(bpb.CheckpointStart(manifest=manifest,
                                                           page_count=len(pages),
                                                           page_bytes=len(pages) * 4096))
                    for i in range(0, len(pages), PAGES_PER_CHUNK):
                        await writer.write(bpb.PageChunk(pages=pages[i:i + PAGES_PER_CHUNK]))
                    await writer.write(bpb.CheckpointEnd(root_digest=root))
                    await writer.finish()
                except BaseException:
                    writer.cancel()
                    raise
            reply = await agent.commit_restore(session, generation)
        except BaseException:
            with contextlib.suppress(errors.MigrateError):
                await agent.abort_restore(session)
            raise
        if owner is not None and owner.board != target:
            # The old board may come back with its copy: it is killed then.
            self.store.add_fence(owner.board, component, generation, "kill")
        self.store.set_owner(component, target, generation)
        running = reply.component
        with contextlib.suppress(errors.MigrateError):
            running = await agent.find(component) or running
        running.board = target
        return running, reply.report


async def _until(stream: AsyncIterator[rpb.LogLine], stop, poll: float = 0.5
                 ) -> AsyncIterator[rpb.LogLine]:
    """The stream's items until it ends or ``stop()`` turns true (checked while idle)."""
    iterator = stream.__aiter__()
    try:
        while True:
            item = asyncio.ensure_future(anext(iterator))
            while not item.done():
                await asyncio.wait({item}, timeout=poll)
                if not item.done() and stop():
                    item.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await item
                    return
            try:
                value = item.result()
            except StopAsyncIteration:
                return
            yield value
    finally:
        with contextlib.suppress(Exception):
            await iterator.aclose()  # type: ignore[attr-defined]


def _check_name(name: str) -> None:
    if not name or len(name) > 64 or not name.isprintable() or "/" in name:
        raise errors.RequestError(f"invalid component name {name!r}: 1 to 64 printable "
                                  "characters, no '/'", reason="INVALID_NAME")
