"""The agent's one link to its board, kept up for as long as the agent runs.

``BoardConnection`` connects an AsyncBoardClient to the board's URL and,
whenever the link drops (the board restarted, the line went silent, the
cable was pulled), connects again with exponential backoff, forever. While
the link is down every call gets Unavailable at once instead of waiting for
a deadline; whoever cares (the health service) hears of each change.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
from typing import Any, Awaitable, Callable, Mapping

from genode_cr.aio_client import DEFAULT_TIMEOUT, AsyncBoardClient
from genode_cr.errors import GenodeCrError
from genode_cr.v1 import board_pb2 as bpb

from ..errors import Unavailable

__all__ = ["BoardConnection", "ChangeCallback"]

log = logging.getLogger(__name__)

#: on_change(healthy): called on every change of the link's state.
ChangeCallback = Callable[[bool], Awaitable[None] | None]

MIN_BACKOFF_S = 0.1
MAX_BACKOFF_S = 2.0
CONNECT_TIMEOUT_S = 5.0


class BoardConnection:
    def __init__(self, url: str, *, baud: int | None = None, timeout: float = DEFAULT_TIMEOUT,
                 connect_timeout: float = CONNECT_TIMEOUT_S,
                 min_backoff: float = MIN_BACKOFF_S, max_backoff: float = MAX_BACKOFF_S,
                 on_change: ChangeCallback | None = None,
                 link_options: Mapping[str, Any] | None = None):
        self.url = url
        #: For our side of each link (``Link``: rto, dead_after, ...).
        self.link_options = dict(link_options or {})
        self.baud = baud
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.on_change = on_change
        #: The board's hello on the latest connection (kept while down: the last known).
        self.info: bpb.BoardInfo | None = None
        #: Counts connections (the board keeps restore sessions across them).
        self.connection_id = 0
        self._client: AsyncBoardClient | None = None
        self._detail = "not connected yet"
        self._up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def healthy(self) -> bool:
        return self._client is not None and not self._client.closed

    @property
    def detail(self) -> str:
        """Why the link is down (empty while it is up)."""
        return "" if self.healthy else self._detail

    @property
    def board_name(self) -> str:
        """The board's name as it last said it, else the URL."""
        return self.info.name if self.info is not None else self.url

    def client(self) -> AsyncBoardClient:
        """The connected client; Unavailable while the link is down."""
        client = self._client
        if client is None or client.closed:
            raise Unavailable(f"board {self.board_name} is unreachable: {self._detail}")
        return client

    async def wait_up(self) -> bpb.BoardInfo:
        """Waits for the link to be up (the first time, or again)."""
        while not self.healthy:
            await self._up.wait()
        assert self.info is not None
        return self.info

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._keep_connected(),
                                                                name=f"board link {self.url}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _keep_connected(self) -> None:
        backoff = self.min_backoff
        try:
            while True:
                try:
                    client = await AsyncBoardClient.connect(
                        self.url, baud=self.baud, timeout=self.timeout,
                        connect_timeout=self.connect_timeout, link_options=self.link_options)
                except Exception as error:   # unreachable, a protocol mismatch, a bad URL
                    self._detail = str(error) or type(error).__name__
                    if isinstance(error, GenodeCrError):
                        log.debug("board %s: %s; again in %.1f s", self.url, error, backoff)
                    else:
                        log.warning("board %s: %s; again in %.1f s", self.url, error, backoff)
                    # Jitter keeps a fleet of agents from knocking in step.
                    await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                backoff = self.min_backoff
                await self._serve(client)
        finally:
            client, self._client = self._client, None
            self._up.clear()
            if client is not None:
                await client.close()

    async def _serve(self, client: AsyncBoardClient) -> None:
        """Holds one connection until its link is gone."""
        if self.info is not None and client.info.name != self.info.name:
            log.warning("the board at %s is now %r (was %r)", self.url, client.info.name,
                        self.info.name)
        self.info = client.info
        self.connection_id += 1
        self._client = client
        self._up.set()
        log.info("board %s: link up (%s)", client.info.name, self.url)
        await self._notify(True)
        try:
            await client.wait_closed()
            self._detail = client.closed_reason or "the link is gone"
        finally:
            self._client = None
            self._up.clear()
            await client.close()
        log.warning("board %s: link down: %s", self.board_name, self._detail)
        await self._notify(False)

    async def _notify(self, healthy: bool) -> None:
        if self.on_change is None:
            return
        try:
            result = self.on_change(healthy)
            if inspect.isawaitable(result):
                await result
        except Exception:        # a listener's failure must not stop the reconnecting
            log.exception("board link change listener failed")
