"""The boards a coordinator knows, and how each is doing.

Boards come from the configuration; a watcher task asks every agent for its
board once a second. A board is SERVING when its agent answers and the
agent's link to the board is up, NOT_SERVING when the agent answers without
a board behind it, UNREACHABLE when the agent does not answer. Listeners
hear of every change (the coordinator finishes fenced work when a board
comes back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from .. import errors
from ..config import BoardConfig
from ..security.tls import TlsConfig
from ..v1 import resources_pb2 as rpb
from .agents import AgentClient

__all__ = ["BoardState", "Fleet"]

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0

Listener = Callable[["BoardState", int], Awaitable[None]]


@dataclass
class BoardState:
    name: str
    agent: AgentClient
    health: int = rpb.BOARD_HEALTH_UNSPECIFIED
    detail: str = "not asked yet"
    info: rpb.Board | None = None
    since: float = field(default_factory=time.monotonic)

    @property
    def serving(self) -> bool:
        return self.health == rpb.BOARD_HEALTH_SERVING

    def to_pb(self) -> rpb.Board:
        board = rpb.Board()
        if self.info is not None:
            board.CopyFrom(self.info)
        board.name = self.name
        board.agent_address = self.agent.address
        board.health = self.health
        board.health_detail = self.detail
        return board


class Fleet:
    def __init__(self, boards: list[BoardConfig], *, poll_interval: float = POLL_INTERVAL,
                 tls: TlsConfig | None = None):
        """``tls``: the coordinator's certificate, for mutual TLS with every agent."""
        self.boards = {b.name: BoardState(b.name, AgentClient(
            b.name, b.agent, tls=tls, identity=b.agent_identity if tls else b.identity))
            for b in boards}
        self.poll_interval = poll_interval
        self._listeners: list[Listener] = []
        self._tasks: list[asyncio.Task] = []
        self._changed = asyncio.Event()

    def board(self, name: str) -> BoardState:
        try:
            return self.boards[name]
        except KeyError:
            known = ", ".join(sorted(self.boards)) or "none"
            raise errors.NotFound(f"no board named {name!r} (known: {known})",
                                  reason="UNKNOWN_BOARD") from None

    def agent(self, name: str) -> AgentClient:
        return self.board(name).agent

    def on_change(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        await asyncio.gather(*(self.refresh(b) for b in self.boards.values()))
        self._tasks = [asyncio.create_task(self._watch(b), name=f"watch {b.name}")
                       for b in self.boards.values()]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*(b.agent.close() for b in self.boards.values()))

    async def refresh(self, board: BoardState) -> None:
        before = board.health
        try:
            board.info = await board.agent.get_board(timeout=max(self.poll_interval * 3, 3.0))
            # The agent answers with the last known board while its link is down.
            if board.info.health == rpb.BOARD_HEALTH_SERVING:
                board.health, board.detail = rpb.BOARD_HEALTH_SERVING, "serving"
            else:
                board.health = rpb.BOARD_HEALTH_NOT_SERVING
                board.detail = board.info.health_detail or "the agent's board link is down"
        except errors.Unauthenticated as error:
            # The TLS handshake failed: whoever answers there is not the agent we trust.
            board.health, board.detail = rpb.BOARD_HEALTH_UNREACHABLE, str(error)
        except errors.Unavailable as error:
            # The agent answers UNAVAILABLE itself when its board link is down.
            answered = await self._agent_answers(board)
            board.health = rpb.BOARD_HEALTH_NOT_SERVING if answered \
                else rpb.BOARD_HEALTH_UNREACHABLE
            board.detail = str(error)
        except errors.MigrateError as error:
            board.health, board.detail = rpb.BOARD_HEALTH_NOT_SERVING, str(error)
        if board.health != before:
            board.since = time.monotonic()
            log.info("board %s: %s (%s)", board.name,
                     rpb.BoardHealth.Name(board.health), board.detail)
            self._changed.set()
            for listener in self._listeners:
                try:
                    await listener(board, before)
                except Exception:  # noqa: BLE001 - a listener must not stop the watch
                    log.exception("board change listener failed")

    async def _agent_answers(self, board: BoardState) -> bool:
        try:
            await board.agent.health(timeout=2.0)
            return True
        except errors.MigrateError:
            return False

    async def _watch(self, board: BoardState) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            await self.refresh(board)

    async def wait_serving(self, names: list[str], timeout: float) -> bool:
        """Waits until every named board serves; False when the time runs out."""
        deadline = time.monotonic() + timeout
        while not all(self.board(n).serving for n in names):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, self.poll_interval))
            if not all(self.board(n).serving for n in names):
                await asyncio.gather(*(self.refresh(self.board(n)) for n in names
                                       if not self.board(n).serving))
        return True
