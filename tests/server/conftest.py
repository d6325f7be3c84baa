"""Board servers reached over every transport: the same tests run on each."""

from __future__ import annotations

import threading

import pytest

from genode_cr.client import BoardClient
from genode_cr.emu import Board, default_rom_dir
from genode_cr.link import BlockingLink, LinkDead, PacedPort, loop_pair, memory_pair
from genode_cr.server import BoardServer
from genode_cr.service import DEFAULT_ORPHAN_TIMEOUT


class KeepOpen:
    """A line end that outlives the link using it, as a UART outlives a
    board that reboots."""

    def __init__(self, port):
        self._port = port

    def close(self) -> None:
        pass

    def __getattr__(self, name):
        return getattr(self._port, name)

    def __setattr__(self, name, value):
        if name == "_port":
            object.__setattr__(self, name, value)
        else:
            setattr(self._port, name, value)


class RunningBoard:
    """A board server on a thread, and a client connected to it."""

    def __init__(self, name: str, transport: str, baud: int = 0, rom_dir=None, faults=None,
                 orphan_timeout: float = DEFAULT_ORPHAN_TIMEOUT, **link_options):
        self.name = name
        self.transport = transport
        self.baud = baud
        self.orphan_timeout = orphan_timeout
        self.rom_dir = rom_dir or default_rom_dir()
        self.server: BoardServer | None = None
        self.thread: threading.Thread | None = None
        self.client_port = self.board_port = None
        self.link_options = link_options
        if transport == "memory":
            self.client_port, self.board_port = memory_pair(faults, faults, seed=name)
        elif transport == "loop":
            self.client_port, self.board_port = loop_pair(timeout=0.01)
        self.url = None
        self.error: BaseException | None = None
        self.boot()

    def boot(self) -> None:
        """Starts (or restarts) the board; a restart is a new board, new epoch."""
        self.board = Board(self.name, rom_dir=self.rom_dir)
        self.server = BoardServer(self.board, baud=self.baud, orphan_timeout=self.orphan_timeout)
        if self.transport == "tcp":
            ready = threading.Event()

            def on_ready(url):
                self.url = url
                ready.set()

            self.thread = threading.Thread(target=self.server.serve,
                                           args=("socket://127.0.0.1:0", on_ready), daemon=True)
            self.thread.start()
            assert ready.wait(10)
            return
        port = KeepOpen(self.board_port)
        line = PacedPort(port, self.baud) if self.baud else port
        link = BlockingLink(line, **self.link_options)
        self._link = link

        def serve():
            try:
                self.server.serve_link(link)
            except LinkDead:
                pass                    # the line died: serving ends, as on a board
            except BaseException as error:
                self.error = error      # re-raised by shutdown(), so the test fails


        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def shutdown(self) -> None:
        self.server.stop_event.set()
        self.thread.join(10)
        if self.transport != "tcp":
            self._link.close()
        if self.error is not None:
            raise AssertionError(f"board {self.name} failed while serving") from self.error

    def connect(self, **kwargs) -> BoardClient:
        if self.transport == "tcp":
            return BoardClient.connect(self.url, **kwargs)
        return BoardClient(BlockingLink(KeepOpen(self.client_port), **self.link_options),
                           **kwargs)


TRANSPORTS = ["memory", "loop", "tcp"]


@pytest.fixture(params=TRANSPORTS)
def transport(request):
    return request.param


@pytest.fixture
def boards(transport):
    started: list[RunningBoard] = []

    def start(name: str, **kwargs) -> RunningBoard:
        running = RunningBoard(name, transport, **kwargs)
        started.append(running)
        return running

    yield start
    for running in started:
        running.shutdown()


@pytest.fixture
def memory_boards():
    """Boards on in-memory lines, for tests about the line itself."""
    started: list[RunningBoard] = []

    def start(name: str = "boardA", **kwargs) -> RunningBoard:
        running = RunningBoard(name, "memory", **kwargs)
        started.append(running)
        return running

    yield start
    for running in started:
        running.shutdown()
