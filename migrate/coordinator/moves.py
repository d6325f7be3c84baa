"""The move engine: one component from a source board to a target board.

    preflight -> pre-copy rounds -> stop-and-copy -> commit -> confirm -> done
                      \\______________ any failure ____________/
                                       target aborts, source resumes -> rolled back

Pre-copy streams checkpoints from the source agent to the target agent while
the component runs; the target stages each round as it arrives, so the
downtime is the final delta only. ``policy.decide`` says when to stop. The
source is frozen only for the final round; the component is killed on the
source only after the target has committed and reports it running (libvirt's
Confirm). Each step that changes a board is journalled before it is taken,
so a restarted coordinator knows whether the source was frozen and whether
the commit was sent, and finishes the move or rolls it back (``recover``).

Ownership generations fence stale copies: the commit and the source's kill
carry generation + 1, so an agent that saw them refuses anything older; a
source that could not be reached at the end keeps a fence in the store and is
killed when it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import AsyncIterator, Protocol

from .. import errors
from ..v1 import resources_pb2 as rpb
from . import policy
from .agents import AgentClient
from .fleet import Fleet
from .model import Move, MoveOptions, Round
from .preflight import history, round_stats, run_preflight, switchover_s
from .provenance import Provenance
from .transfer import Transfer

__all__ = ["MoveEngine", "MoveMetrics"]

log = logging.getLogger(__name__)

#: How often a running move's progress is written to the store (phases are
#: written at once); watchers see every chunk.
SAVE_INTERVAL = 1.0
#: Attempts to settle an ambiguous commit or a rollback before giving up and
#: leaving the work to the board's fence.
SETTLE_INTERVAL = 0.5
#: The component already runs on the target: a source that does not take the
#: kill this quickly is fenced instead of holding the move up.
CONFIRM_KILL_TIMEOUT = 5.0


class MoveMetrics(Protocol):
    def move_finished(self, move: Move) -> None: ...


class MoveEngine:
    def __init__(self, fleet: Fleet, store, *, metrics: MoveMetrics | None = None,
                 provenance: Provenance | None = None):
        self.fleet = fleet
        self.store = store
        self.metrics = metrics
        #: Checks each round's signature before the target sees any of it.
        self.provenance = provenance or Provenance()
        self._moves: dict[str, Move] = {}          # moves in progress, by id
        self._moving: dict[str, str] = {}          # component -> move id
        self._tasks: dict[str, asyncio.Task] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._last_save: dict[str, float] = {}
        self._taken_at: dict[str, int] = {}        # board time of each move's last capture

    # --- ownership ----------------------------------------------------------------------

    def generation(self, component: str) -> int:
        owner = self.store.owner(component)
        return owner.generation if owner else 0

    async def locate(self, component: str) -> str:
        """The board the component runs on: the owner record, else a search."""
        owner = self.store.owner(component)
        if owner is not None:
            return owner.board
        found = []
        for state in self.fleet.boards.values():
            if not state.serving:
                continue
            with contextlib.suppress(errors.MigrateError):
                if await state.agent.find(component) is not None:
                    found.append(state.name)
        if not found:
            raise errors.NotFound(f"component {component!r} runs on no reachable board",
                                  reason="UNKNOWN_COMPONENT")
        if len(found) > 1:
            raise errors.PreconditionFailed(
                f"component {component!r} runs on {', '.join(found)}: stop all but one",
                reason="AMBIGUOUS_COMPONENT")
        self.store.set_owner(component, found[0], 1)
        return found[0]

    def moving(self, component: str) -> str | None:
        return self._moving.get(component)

    # --- preflight and plan -------------------------------------------------------------

    async def plan(self, component: str, source: str, target: str,
                   options: MoveOptions) -> rpb.MovePlan:
        source = source or await self.locate(component)
        checks, comp, src = await run_preflight(self.fleet, component, source, target, options)
        plan = rpb.MovePlan(component=component, source_board=source, target_board=target,
                            checks=checks.checks, feasible=checks.passed)
        if comp is None or src is None:
            return plan
        known = history(self.store, component, src)
        ram = comp.ram_used_bytes
        dirty = 0 if options.mode == "stop-copy" else known.dirty_rate
        prediction = policy.predict(
            ram, known.wire_rate, dirty, working_set_bytes=known.working_set,
            wire_ratio_=known.wire_ratio, latency_s=known.latency_s,
            switchover_s=known.switchover_s, max_downtime_ms=options.max_downtime_ms,
            max_rounds=options.max_rounds)
        plan.ram_bytes = ram
        plan.goodput_bytes_per_s = int(known.wire_rate / known.wire_ratio)
        plan.dirty_rate_bytes_per_s = int(dirty)
        plan.predicted_total_ms = prediction.total_ms
        plan.predicted_downtime_ms = (prediction.stop_copy_downtime_ms
                                      if options.mode == "stop-copy" else prediction.downtime_ms)
        plan.stop_copy_downtime_ms = prediction.stop_copy_downtime_ms
        plan.prediction_basis = f"{known.basis}; {prediction.basis}"
        return plan

    # --- creating, watching, cancelling -------------------------------------------------

    async def create(self, component: str, source: str, target: str,
                     options: MoveOptions) -> Move:
        if component in self._moving:
            raise errors.AlreadyMoving(f"{component} is already moving "
                                       f"(move {self._moving[component]})",
                                       metadata={"move": self._moving[component]})
        move = Move(id=uuid.uuid4().hex[:12], component=component, source=source,
                    target=target, options=options)
        self._moving[component] = move.id            # reserved before the first await
        try:
            move.source = source = source or await self.locate(component)
            self.fleet.board(target)
            move.enter("preflight")
            checks, _, _ = await run_preflight(self.fleet, component, source, target, options)
            if not checks.passed:
                raise checks.failure()
        except BaseException:
            del self._moving[component]
            raise
        move.generation = self.generation(component) or 1
        self._moves[move.id] = move
        self._save(move, ("created", {"source": source, "target": target,
                                      "options": move.to_document()["options"]}))
        self._tasks[move.id] = asyncio.create_task(self._run(move), name=f"move {move.id}")
        return move

    def get(self, move_id: str) -> Move:
        if move_id in self._moves:
            return self._moves[move_id]
        doc = self.store.get_move(move_id)
        if doc is None:
            raise errors.NotFound(f"no move {move_id!r}", reason="UNKNOWN_MOVE")
        return Move.from_document(doc)

    def list(self, *, component: str | None = None, limit: int = 50,
             before: str | None = None) -> list[Move]:
        docs = self.store.list_moves(component=component, limit=limit, before=before)
        return [self._moves.get(d["id"]) or Move.from_document(d) for d in docs]

    async def watch(self, move_id: str) -> AsyncIterator[Move]:
        """The move now, then after every change, until it has ended."""
        move = self.get(move_id)
        yield move
        while not move.terminal:
            event = self._events.setdefault(move_id, asyncio.Event())
            if move_id in self._moves:
                await event.wait()
            else:
                # Driven by no task of ours (yet): a journalled move being recovered.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), SETTLE_INTERVAL)
            move = self.get(move_id)
            yield move

    async def cancel(self, move_id: str) -> Move:
        move = self.get(move_id)
        if move.terminal:
            raise errors.PreconditionFailed(f"move {move_id} already ended ({move.phase})",
                                            reason="MOVE_ENDED")
        move.cancel_requested = True
        self._save(move, ("cancel requested", {}))
        return move

    async def wait(self, move_id: str) -> Move:
        task = self._tasks.get(move_id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
        return self.get(move_id)

    async def close(self) -> None:
        """Stops driving moves; the journal lets the next coordinator finish them."""
        for task in self._tasks.values():
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- bookkeeping --------------------------------------------------------------------

    def _notify(self, move: Move) -> None:
        event = self._events.pop(move.id, None)
        if event is not None:
            event.set()

    def _save(self, move: Move, journal: tuple[str, dict] | None = None) -> None:
        move.updated = time.time()
        self.store.put_move(move.id, move.component, move.phase, move.to_document(),
                            journal=journal)
        self._last_save[move.id] = time.monotonic()
        self._notify(move)

    def _progress(self, move: Move) -> None:
        if time.monotonic() - self._last_save.get(move.id, 0) >= SAVE_INTERVAL:
            self._save(move)
        else:
            self._notify(move)

    def _enter(self, move: Move, phase: str, detail: dict | None = None) -> None:
        move.enter(phase)
        self._save(move, (phase, detail or {}))

    def _finish(self, move: Move, phase: str, error: BaseException | None = None) -> None:
        if error is not None:
            move.error_reason = errors.reason_of(error)
            move.error_message = str(error) or type(error).__name__
        start = move.transitions[0][1] if move.transitions else move.created
        move.total_ms = int((time.time() - start) * 1000)
        if phase == "done":
            move.progress.percent = 100.0
            move.progress.bytes_remaining = 0
        self._enter(move, phase, {"reason": move.error_reason} if error else {})
        self._moves.pop(move.id, None)
        self._moving.pop(move.component, None)
        self._tasks.pop(move.id, None)
        self._last_save.pop(move.id, None)
        self._taken_at.pop(move.id, None)
        self._notify(move)
        if self.metrics is not None:
            self.metrics.move_finished(move)
        log.info("move %s of %s %s -> %s: %s%s", move.id, move.component, move.source,
                 move.target, phase, f" ({move.error_message})" if error else "")

    # --- running a move -----------------------------------------------------------------

    async def _run(self, move: Move) -> None:
        src, dst = self.fleet.agent(move.source), self.fleet.agent(move.target)
        try:
            live = move.options.mode == "live"
            self._enter(move, "pre_copy" if live else "stop_and_copy")
            move.target_session = await dst.begin_restore(move.component)
            self._save(move, ("target session", {"session": move.target_session}))
            since = ""
            if live:
                since = await self._pre_copy(move, src, dst)
                self._enter(move, "stop_and_copy", {"rule": move.stop_rule})
            else:
                move.stop_rule = "stop-copy"
            self._check_cancel(move)
            move.source_frozen = True
            self._save(move, ("freeze", {"since": since}))
            frozen_at = time.monotonic()
            await self._round(move, src, dst, since, final=True)
            self._check_cancel(move)
            move.commit_sent = True
            self._enter(move, "commit", {"session": move.target_session})
            await dst.commit_restore(move.target_session, move.generation + 1)
            move.downtime_ms = int((time.monotonic() - frozen_at) * 1000)
            await self._confirm(move, src, dst)
        except asyncio.CancelledError:
            raise          # the coordinator stops; the journal has the rest
        except BaseException as error:  # noqa: BLE001 - every failure ends in a phase
            await self._fail(move, src, dst, error)

    async def _pre_copy(self, move: Move, src: AgentClient, dst: AgentClient) -> str:
        since = ""
        switchover = switchover_s(self.store)
        while True:
            self._check_cancel(move)
            round_ = await self._round(move, src, dst, since, final=False)
            since = round_.checkpoint_id
            decision = policy.decide(round_stats(move.rounds),
                                     max_downtime_ms=move.options.max_downtime_ms,
                                     max_rounds=move.options.max_rounds,
                                     switchover_s=switchover)
            p = move.progress
            p.expected_downtime_ms = decision.expected_downtime_ms
            p.convergence, p.convergence_reason = decision.convergence.value, decision.reason
            p.bytes_remaining = policy.expected_final_bytes(round_stats(move.rounds))
            self._save(move)
            if decision.stop:
                move.stop_rule = decision.rule
                move.predicted_downtime_ms = decision.expected_downtime_ms
                if decision.overshoot and move.options.on_overshoot != "accept":
                    raise errors.DowntimeOvershoot(
                        f"pre-copy stopped ({decision.rule}) with a predicted downtime of "
                        f"{decision.expected_downtime_ms} ms, over the "
                        f"{move.options.max_downtime_ms} ms budget; {decision.reason}",
                        metadata={"rule": decision.rule})
                return since

    async def _round(self, move: Move, src: AgentClient, dst: AgentClient, since: str, *,
                     final: bool) -> Round:
        """One checkpoint from the source into the target's restore session. A
        link that drops and comes back within the grace time resumes it."""
        started = time.monotonic()
        index = len(move.rounds)
        move.progress.round = index
        transfer = Transfer(move.component, move.target_session, since, final, move.generation)
        deadline: float | None = None
        progress_mark = 0
        sent_before = move.progress.bytes_sent

        def on_part(t: Transfer) -> None:
            move.progress.bytes_sent = sent_before + t.sent_bytes
            self._account(move, t.page_bytes, t.announced_bytes, final)

        while True:
            try:
                await transfer.run(
                    src, dst,
                    on_part=on_part,
                    check=(lambda: None) if final else (lambda: self._check_cancel(move)),
                    vet=lambda t: self.provenance.check_received(move.source, t.statement,
                                                                 t.signature))
                break
            except errors.Unavailable as error:
                now = time.monotonic()
                if transfer.sent_bytes + len(transfer.parts) != progress_mark:
                    deadline = None         # it moved since the last drop: a new drop
                    progress_mark = transfer.sent_bytes + len(transfer.parts)
                deadline = deadline or now + move.options.link_grace_s
                if now >= deadline:
                    raise errors.Unavailable(
                        f"{error} (not back within the {move.options.link_grace_s:g} s link "
                        "grace)") from error
                self._check_cancel(move)
                self._save(move, ("link down", {"round": index, "error": str(error),
                                                "source_parts": len(transfer.parts)}))
                await asyncio.sleep(min(SETTLE_INTERVAL, max(0.0, deadline - now)))
        move.progress.bytes_sent = sent_before + transfer.sent_bytes
        duration = max(time.monotonic() - started, 1e-3)
        previous = self._taken_at.get(move.id) if index else None
        taken_at = transfer.taken_at_us
        dirty = int(transfer.page_bytes / ((taken_at - previous) / 1e6)) \
            if previous and taken_at > previous else 0
        self._taken_at[move.id] = taken_at
        round_ = Round(index, final, transfer.pages, transfer.page_bytes, transfer.wire_bytes,
                       int(duration * 1000), dirty, transfer.checkpoint_id,
                       transfer.attempts - 1)
        move.rounds.append(round_)
        p = move.progress
        p.goodput = int(policy.goodput(round_stats(move.rounds)))
        if dirty:
            p.dirty_rate = dirty
        self._save(move, ("round", {"index": index, "checkpoint": transfer.checkpoint_id,
                                    "pages": transfer.pages, "final": final,
                                    "resumes": transfer.attempts - 1}))
        return round_

    def _account(self, move: Move, round_done: int, round_total: int, final: bool) -> None:
        """Progress as known now. The estimate of what remains may grow (the
        component wrote more than expected); the percentage never runs back."""
        p = move.progress
        done = sum(r.page_bytes for r in move.rounds) + round_done
        remaining = max(0, round_total - round_done)
        if not final and move.rounds:
            remaining += policy.expected_final_bytes(round_stats(move.rounds))
        p.bytes_remaining = remaining
        # Until the stop rule fires nobody knows how many rounds remain: pre-copy
        # fills the bar to 90 %, the final delta to 99 %, the confirm to 100 %.
        ceiling = 99.0 if final else 90.0
        if done + remaining:
            p.percent = max(p.percent, min(ceiling, ceiling * done / (done + remaining)))
        self._progress(move)

    def _check_cancel(self, move: Move) -> None:
        if move.cancel_requested:
            raise errors.Cancelled(f"move {move.id} was cancelled")

    async def _confirm(self, move: Move, src: AgentClient, dst: AgentClient) -> None:
        """The target runs it: make it the owner, then end the source's copy."""
        new_generation = move.generation + 1
        self._enter(move, "confirm")
        running = await dst.find(move.component)
        if running is None or running.state != "running":
            raise errors.InternalError(
                f"{move.target} committed the restore but reports {move.component} as "
                f"{running.state if running else 'absent'}")
        self.store.set_owner(move.component, move.target, new_generation)
        try:
            await src.kill(move.component, new_generation, timeout=CONFIRM_KILL_TIMEOUT)
        except errors.Unavailable as error:
            self.store.add_fence(move.source, move.component, new_generation, "kill")
            move.note = (f"{move.source} was unreachable at the end ({error}); its frozen copy "
                         f"is fenced (generation {new_generation}) and killed when it returns")
        except errors.MigrateError as error:    # the source answered: its copy is gone
            log.info("killing %s on %s after the move: %s", move.component, move.source, error)
        self._finish(move, "done")

    async def _fail(self, move: Move, src: AgentClient, dst: AgentClient,
                    error: BaseException) -> None:
        """Leaves the component running on exactly one board."""
        if move.commit_sent:
            outcome = await self._settle_commit(move, dst)
            if outcome == "committed":
                try:
                    await self._confirm(move, src, dst)
                    return
                except errors.MigrateError as confirm_error:
                    log.warning("move %s: the target took the commit but %s", move.id,
                                confirm_error)
                    with contextlib.suppress(errors.MigrateError):
                        await dst.kill(move.component, move.generation + 1)
            if outcome == "unknown":
                # The target may run it: it is fenced and killed when it returns.
                self.store.add_fence(move.target, move.component, move.generation + 2, "kill")
                move.generation += 1      # the source's copy outranks the target's
                move.note = (f"{move.target} became unreachable during the commit; its copy "
                             f"is fenced and killed when it returns")
        await self._roll_back(move, src, dst)
        if isinstance(error, errors.Cancelled):
            phase = "cancelled"
        elif move.source_frozen or move.rounds or move.target_session:
            phase = "rolled_back"
        else:
            phase = "failed"
        self._finish(move, phase, error)

    async def _settle_commit(self, move: Move, dst: AgentClient) -> str:
        """After a commit that failed in flight: did the target take it?"""
        deadline = time.monotonic() + move.options.link_grace_s
        while True:
            try:
                running = await dst.find(move.component)
                return "committed" if running is not None else "not committed"
            except errors.MigrateError:
                if time.monotonic() >= deadline:
                    return "unknown"
                await asyncio.sleep(SETTLE_INTERVAL)

    async def _roll_back(self, move: Move, src: AgentClient, dst: AgentClient) -> None:
        if move.target_session:
            # An agent that stays away aborts the session itself once it idles.
            await self._retry_for(move.options.link_grace_s,
                                  lambda: dst.abort_restore(move.target_session))
        if move.source_frozen:
            if not await self._retry_for(move.options.link_grace_s,
                                         lambda: src.resume(move.component, move.generation)):
                self.store.add_fence(move.source, move.component, move.generation, "resume")
                move.note = (move.note + "; " if move.note else "") + (
                    f"{move.source} could not be reached to resume {move.component}; it is "
                    "resumed when the board returns")
        self.store.set_owner(move.component, move.source, max(move.generation, 1))

    async def _retry_for(self, seconds: float, call) -> bool:  # type: ignore[no-untyped-def]
        """Retries a call while its agent is unavailable; False if it stayed away."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                await call()
                return True
            except errors.Unavailable:
                if time.monotonic() >= deadline:
                    return False
                await asyncio.sleep(SETTLE_INTERVAL)
            except errors.MigrateError as error:
                log.info("%s", error)
                return True

    # --- after a restart, and when boards come back --------------------------------------

    async def recover(self) -> list[str]:
        """Finishes or rolls back every move the journal shows unfinished."""
        recovered = []
        for doc in self.store.active_moves():
            move = Move.from_document(doc)
            self._moves[move.id] = move
            self._moving[move.component] = move.id
            self._tasks[move.id] = asyncio.create_task(self._recover(move),
                                                       name=f"recover {move.id}")
            recovered.append(move.id)
        return recovered

    async def _recover(self, move: Move) -> None:
        src, dst = self.fleet.agent(move.source), self.fleet.agent(move.target)
        log.info("recovering move %s (%s)", move.id, move.phase)
        if move.phase == "confirm":
            try:
                await self._confirm(move, src, dst)
                return
            except errors.MigrateError as error:
                await self._fail(move, src, dst, error)
                return
        await self._fail(move, src, dst, errors.Unavailable(
            f"the coordinator restarted during {move.phase.replace('_', '-')}"))

    async def settle_fences(self, board: str) -> int:
        """Carries out what a board missed while it was away."""
        done = 0
        agent = self.fleet.agent(board)
        for fence in self.store.fences(board):
            try:
                if fence.reason == "kill":
                    with contextlib.suppress(errors.NotFound):
                        await agent.kill(fence.component, fence.generation)
                else:
                    await agent.resume(fence.component, fence.generation)
            except errors.Unavailable:
                return done
            except Exception as error:  # noqa: BLE001 - the board refused: nothing to undo
                log.warning("fence %s on %s: %s", fence.reason, board, error)
            self.store.remove_fence(board, fence.component)
            done += 1
        return done
