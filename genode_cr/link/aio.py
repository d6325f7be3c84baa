"""The board link for asyncio code.

The port I/O stays on the two pump threads (pyserial has no dependable
asyncio interface, and a paced write is a blocking sleep anyway); the event
loop is only woken when something changed and then polls the core, which
never blocks for longer than a frame takes to parse.

    async with await AsyncLink.open("socket://127.0.0.1:4555") as link:
        await link.send(hello)
        reply = await link.receive(timeout=5)
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, TypeVar

from ._errors import LinkDead
from ._events import Event
from ._link import Link, LinkState, random_epoch
from ._pump import Pump, open_port
from ._stats import LinkStats
from .blocking import DEFAULT_SEND_BUFFER
from .ports import SerialLike

__all__ = ["AsyncLink"]

T = TypeVar("T")


class AsyncLink:
    """Like BlockingLink, with coroutines; create it inside the running loop."""

    def __init__(
        self,
        port: SerialLike,
        *,
        epoch: int | None = None,
        max_send_buffer: int = DEFAULT_SEND_BUFFER,
        **options: Any,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self.link = Link(epoch=epoch or random_epoch(), **options)
        self.max_send_buffer = max_send_buffer
        self._pump = Pump(port, self.link, on_wake=self._wake_threadsafe)
        self._pump.start()

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        baud: int | None = None,
        pace: bool = False,
        connect_timeout: float | None = 5.0,
        **options: Any,
    ) -> AsyncLink:
        """Open a pyserial URL and handshake, as BlockingLink.open; LinkDead if the peer is silent."""
        port = await asyncio.to_thread(open_port, url, baud, pace)
        self = cls(port, **options)
        try:
            await self.wait_established(connect_timeout)
        except TimeoutError:
            await self.close()
            raise LinkDead(
                f"board link dead: no handshake on {url} within {connect_timeout} s ({self.stats.summary()})"
            ) from None
        except BaseException:
            await self.close()
            raise
        return self

    @property
    def state(self) -> LinkState:
        return self.link.state

    @property
    def stats(self) -> LinkStats:
        return self.link.stats

    async def wait_established(self, timeout: float | None = None) -> None:
        await self._until(self._pump.poll_established, timeout)

    async def send(self, payload: bytes, timeout: float | None = None) -> None:
        """Queue a message, waiting while the send buffer is full (see BlockingLink.send)."""
        await self._until(lambda: self._pump.try_send(payload, self.max_send_buffer) or None, timeout)

    async def receive(self, timeout: float | None = None) -> bytes:
        """The next message; raises TimeoutError, LinkReset or LinkDead like BlockingLink.receive."""
        return await self._until(self._pump.poll_message, timeout)

    async def next_event(self, timeout: float | None = None) -> Event:
        return await self._until(self._pump.poll_event, timeout)

    async def close(self) -> None:
        await asyncio.to_thread(self._pump.stop)

    async def __aenter__(self) -> AsyncLink:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _wake_threadsafe(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._changed.set)
        except RuntimeError:
            pass  # the loop is closed; nobody is waiting any more

    async def _until(self, check: Callable[[], T | None], timeout: float | None) -> T:
        async with asyncio.timeout(timeout):
            while True:
                # Clear before checking: a wake-up between the two is then not lost.
                self._changed.clear()
                if (result := check()) is not None:
                    return result
                await self._changed.wait()
