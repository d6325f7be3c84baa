"""The board link for threaded code: ``send()`` and ``receive()`` that block.

    with BlockingLink.open("socket://127.0.0.1:4555", baud=921600) as link:
        link.send(hello)
        reply = link.receive(timeout=5)
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ._errors import LinkDead
from ._events import Event
from ._link import Link, LinkState, random_epoch
from ._pump import Pump, open_port
from ._stats import LinkStats
from .ports import SerialLike

__all__ = ["BlockingLink"]

#: Default budget of send(): payload bytes queued or unacknowledged.
DEFAULT_SEND_BUFFER = 1 << 20


class BlockingLink:
    """A link core driven by a reader and a writer thread over any port.

    Args:
        port: a pyserial port or anything shaped like one (see ``ports``).
        epoch: this side's epoch; random by default.
        max_send_buffer: ``send()`` blocks while this many payload bytes are
            queued or unacknowledged (a larger single message goes alone).
        clock: monotonic seconds, for tests.
        **options: passed to ``Link`` (window, max_payload, rto, dead_after, ...).
    """

    def __init__(
        self,
        port: SerialLike,
        *,
        epoch: int | None = None,
        max_send_buffer: int = DEFAULT_SEND_BUFFER,
        clock: Callable[[], float] = time.monotonic,
        **options: Any,
    ) -> None:
        self.link = Link(epoch=epoch or random_epoch(), **options)
        self.max_send_buffer = max_send_buffer
        self._pump = Pump(port, self.link, clock=clock)
        self._pump.start()

    @classmethod
    def open(
        cls,
        url: str,
        *,
        baud: int | None = None,
        pace: bool = False,
        connect_timeout: float | None = 5.0,
        **options: Any,
    ) -> BlockingLink:
        """Open a pyserial URL (``socket://``, a device path, ``loop://``) and handshake.

        ``baud`` configures a real serial port (socket:// and loop:// ignore it);
        ``pace=True`` also holds our writes to that line rate (see ``pacing``),
        for lines that would otherwise carry bytes at any speed.
        Raises LinkDead if the peer does not answer within ``connect_timeout``.
        """
        port = open_port(url, baud, pace)
        self = cls(port, **options)
        try:
            self.wait_established(connect_timeout)
        except TimeoutError:
            self.close()
            raise LinkDead(
                f"board link dead: no handshake on {url} within {connect_timeout} s ({self.stats.summary()})"
            ) from None
        except BaseException:
            self.close()
            raise
        return self

    @property
    def state(self) -> LinkState:
        return self.link.state

    @property
    def stats(self) -> LinkStats:
        return self.link.stats

    def wait_established(self, timeout: float | None = None) -> None:
        """Block until the handshake is done; TimeoutError if it is not within ``timeout``."""
        self._pump.wait(self._pump.poll_established, timeout)

    def send(self, payload: bytes, timeout: float | None = None) -> None:
        """Queue a message, blocking while the send buffer is full.

        Returns once the message is queued, not when it is acknowledged.
        Raises TimeoutError, LocalLinkError, LinkDead.
        """
        self._pump.wait(lambda: self._pump.try_send(payload, self.max_send_buffer) or None, timeout)

    def receive(self, timeout: float | None = None) -> bytes:
        """The next message from the peer.

        Raises:
            TimeoutError: nothing within ``timeout`` seconds.
            LinkReset: the peer restarted or closed; replies to earlier
                messages will not come.  The link carries on.
            LinkDead: the peer or the port is gone.
        """
        return self._pump.wait(self._pump.poll_message, timeout)

    def next_event(self, timeout: float | None = None) -> Event:
        """The next event of the core, for callers that want LinkEstablished & co. as values."""
        return self._pump.wait(self._pump.poll_event, timeout)

    def close(self) -> None:
        """Tell the peer (RESET, best effort), stop the threads, close the port."""
        self._pump.stop()

    def __enter__(self) -> BlockingLink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<BlockingLink {self.link!r}>"
