"""Serving a board's CR component over its UART.

One thread does everything a board's CR component does: it keeps board time
in step with the wall clock, takes requests from the link, and streams the
answers out as fast as the (possibly paced) line takes them, so components
keep running while a checkpoint travels.

``serve`` listens on ``socket://host:port`` (port 0 picks one; the bound URL
is reported) the way QEMU's chardev server does, one peer at a time, or
opens a serial device path for a real or guest UART.

When a peer's link ends, its restore sessions stay for ``orphan_timeout``
seconds (on this server's clock) for the agent's next link to continue;
stopping the server aborts them.
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
import time
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlparse

import serial
from google.protobuf.message import DecodeError

from .emu import Board
from .link import BlockingLink, LinkDead, LinkReset, PacedPort, PeerClosed, SocketPort
from .service import DEFAULT_ORPHAN_TIMEOUT, BoardService
from .v1 import board_pb2 as bpb

__all__ = ["BoardServer"]

log = logging.getLogger(__name__)

#: Longest stretch of board time run at once, so requests stay responsive.
MAX_STEP = 0.05


class BoardServer:
    """``link_options`` go to the board's side of every link it serves (``Link``:
    rto, dead_after, keepalive, ...)."""

    def __init__(self, board: Board, *, baud: int = 0, clock: Callable[[], float] = time.monotonic,
                 orphan_timeout: float = DEFAULT_ORPHAN_TIMEOUT,
                 link_options: Mapping[str, Any] | None = None):
        self.board = board
        self.baud = baud
        self.service = BoardService(board, baud=baud, orphan_timeout=orphan_timeout)
        self.link_options = dict(link_options or {})
        self._clock = clock
        self._last = clock()
        self.stop_event = threading.Event()

    # --- time ---------------------------------------------------------------------

    def advance(self) -> None:
        """Runs the board up to now, and lets restore sessions no agent claimed expire."""
        now = self._clock()
        due, self._last = now - self._last, now
        while due > 0 and not self.stop_event.is_set():
            step = min(due, MAX_STEP)
            self.board.run(step)
            due -= step
        self.service.expire_orphans(now)

    # --- one connected peer ------------------------------------------------------------

    def serve_link(self, link: BlockingLink) -> None:
        """Serves until the link dies or ``stop_event`` is set."""
        streams: collections.deque[Iterator[bpb.Response]] = collections.deque()
        outgoing: collections.deque[bpb.Response] = collections.deque()
        try:
            while not self.stop_event.is_set():
                self.advance()
                self._receive(link, streams, outgoing, timeout=0.001 if streams else 0.01)
                outgoing.extend(self.service.poll_followers())
                self._send(link, streams, outgoing)
        finally:
            self.service.reset(self._clock())

    def _receive(self, link: BlockingLink, streams, outgoing, timeout: float) -> None:
        try:
            payload = link.receive(timeout=timeout)
        except TimeoutError:
            return
        except LinkReset as reset:
            gone = "closed the link" if isinstance(reset.event, PeerClosed) else "restarted"
            log.info("%s: the agent %s; dropping its requests", self.board.name, gone)
            self.service.reset(self._clock())
            streams.clear()
            outgoing.clear()
            return
        request = bpb.Request()
        try:
            request.ParseFromString(payload)
        except DecodeError as error:
            outgoing.append(self.service.undecodable(str(error)))
            return
        stream = iter(self.service.handle(request))
        # The first step runs now, so requests take effect in arrival order.
        first = next(stream, None)
        if first is not None:
            outgoing.append(first)
            streams.append(stream)

    @staticmethod
    def _send(link: BlockingLink, streams, outgoing) -> None:
        while True:
            if not outgoing:
                if not streams:
                    return
                response = next(streams[0], None)
                if response is None:
                    streams.popleft()
                    continue
                streams.rotate(-1)
                outgoing.append(response)
            try:
                link.send(outgoing[0].SerializeToString(), timeout=0)
            except TimeoutError:
                return          # the line is full; the board runs on meanwhile
            outgoing.popleft()

    # --- ports ---------------------------------------------------------------------------

    def serve(self, url: str, on_ready: Callable[[str], None] = lambda url: None) -> None:
        """Serves ``url`` until ``stop_event`` is set; then aborts the restore sessions."""
        try:
            if url.startswith("socket://"):
                self._serve_socket(url, on_ready)
            else:
                self._serve_device(url, on_ready)
        finally:
            self.service.close()

    def _serve_socket(self, url: str, on_ready: Callable[[str], None]) -> None:
        parsed = urlparse(url)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((parsed.hostname or "127.0.0.1", parsed.port or 0))
        listener.listen(1)
        listener.settimeout(0.01)
        host, port = listener.getsockname()
        on_ready(f"socket://{host}:{port}")
        try:
            while not self.stop_event.is_set():
                self.advance()
                try:
                    connection, peer = listener.accept()
                except (TimeoutError, socket.timeout):
                    continue
                log.info("%s: agent connected from %s:%s", self.board.name, *peer)
                self._serve_port(SocketPort(connection, timeout=0.01))
        finally:
            listener.close()

    def _serve_device(self, url: str, on_ready: Callable[[str], None]) -> None:
        on_ready(url)
        while not self.stop_event.is_set():
            try:
                port = serial.serial_for_url(url, timeout=0.01)
            except serial.SerialException as error:
                log.warning("%s: cannot open %s: %s", self.board.name, url, error)
                self.stop_event.wait(0.5)
                continue
            self._serve_port(port)

    def _serve_port(self, port) -> None:
        paced = PacedPort(port, self.baud) if self.baud else port
        link = BlockingLink(paced, **self.link_options)
        try:
            self.serve_link(link)
        except LinkDead as error:
            log.info("%s: link closed (%s)", self.board.name, error)
        finally:
            link.close()
