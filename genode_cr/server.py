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

No peer stops the server: whatever ends a link (the peer hangs up, goes
silent, is refused at the handshake, breaks the link protocol) ends that link
only, and the server waits for the next one with the components running. Only
``stop_event`` ends ``serve``.
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
from .link import BlockingLink, LinkError, LinkReset, PacedPort, PeerClosed, SocketPort
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
        """Serves until the link ends or ``stop_event`` is set.

        Returns, never raises, when the link ends for whatever the peer did
        (LinkDead, a refused handshake, a protocol violation): the caller
        closes it and takes the next one.
        """
        streams: collections.deque[tuple[int, Iterator[bpb.Response]]] = collections.deque()
        outgoing: collections.deque[bpb.Response] = collections.deque()
        try:
            while not self.stop_event.is_set():
                self.advance()
                self._receive(link, streams, outgoing, timeout=0.001 if streams else 0.01)
                outgoing.extend(self.service.poll_followers())
                self._send(link, streams, outgoing)
        except LinkError as error:
            log.info("%s: link ended: %s", self.board.name, error)
        finally:
            self.service.reset(self._clock())

    def _receive(self, link: BlockingLink, streams, outgoing, timeout: float) -> None:
        try:
            payload = link.receive(timeout=timeout)
        except TimeoutError:
            return
        except LinkReset as reset:
            event = reset.event
            gone = "closed the link" if isinstance(event, PeerClosed) else "restarted"
            why = f" ({event.reason})" if isinstance(event, PeerClosed) and event.reason else ""
            log.info("%s: the agent %s%s; dropping its requests", self.board.name, gone, why)
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
            streams.append((request.id, stream))

    def _send(self, link: BlockingLink, streams, outgoing) -> None:
        while True:
            if not outgoing:
                if not streams:
                    return
                response = next(streams[0][1], None)
                if response is None:
                    streams.popleft()
                    continue
                streams.rotate(-1)
                outgoing.append(response)
            payload = outgoing[0].SerializeToString()
            limit = link.link.peer_max_message
            if limit is not None and len(payload) > limit:
                # Sending it would fail the link; the request fails instead.
                self._refuse_answer(streams, outgoing, len(payload), limit)
                continue
            try:
                link.send(payload, timeout=0)
            except TimeoutError:
                return          # the line is full; the board runs on meanwhile
            outgoing.popleft()

    def _refuse_answer(self, streams, outgoing, size: int, limit: int) -> None:
        """Replaces outgoing[0], too large for the agent, with the error that ends its request."""
        refused = self.service.answer_too_large(outgoing[0], size, limit)
        rest = [r for r in list(outgoing)[1:] if r.id != refused.id]
        outgoing.clear()
        outgoing.extend([refused, *rest])
        kept = [(i, s) for i, s in streams if i != refused.id]
        streams.clear()
        streams.extend(kept)

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
                except OSError as error:
                    # A peer that hung up before it was taken (ECONNABORTED), or
                    # no descriptor left: not a reason to stop serving.
                    log.warning("%s: could not take a connection: %s", self.board.name, error)
                    self.stop_event.wait(0.01)
                    continue
                try:
                    port = SocketPort(connection, timeout=0.01)
                except OSError as error:      # reset before we could set it up
                    log.info("%s: connection from %s:%s gone at once: %s",
                             self.board.name, *peer, error)
                    connection.close()
                    continue
                log.info("%s: agent connected from %s:%s", self.board.name, *peer)
                # Each connection is a new link with a new epoch (docs/link-protocol.md §11).
                self._serve_port(port)
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
        finally:
            link.close()
