"""Real board servers on TCP threads, and helpers to run coroutines and wait with deadlines."""

from __future__ import annotations

import asyncio
import inspect
import re
import threading
import time
from typing import Any, Awaitable, Callable, TypeVar

import pytest

from genode_cr.emu import Board, default_rom_dir
from genode_cr.server import BoardServer

T = TypeVar("T")

#: Guards so that a hang fails the test; no test asserts how long anything took.
DEADLINE = 20.0

COUNT = re.compile(r"^count (\d+) elapsed_ms (\d+)$")


class BoardThread:
    """A board server on 127.0.0.1 in a thread; stop and start it again on the same port.
    ``server_options`` go to BoardServer (orphan_timeout, link_options)."""

    def __init__(self, name: str, rom_dir=None, **server_options):
        self.name = name
        self.server_options = server_options
        self.board = Board(name, rom_dir=rom_dir or default_rom_dir())
        self.url = "socket://127.0.0.1:0"
        self.server: BoardServer | None = None
        self.thread: threading.Thread | None = None
        self.start()

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def start(self) -> None:
        """Serves the same board again (its components kept) on the port it had."""
        self.server = BoardServer(self.board, **self.server_options)
        ready = threading.Event()

        def on_ready(url: str) -> None:
            self.url = url
            ready.set()

        self.thread = threading.Thread(target=self.server.serve, args=(self.url, on_ready),
                                       name=f"board {self.name}", daemon=True)
        self.thread.start()
        assert ready.wait(DEADLINE), f"board {self.name} did not listen"

    def stop(self) -> None:
        assert self.server is not None and self.thread is not None
        self.server.stop_event.set()
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), f"board {self.name} did not stop"


@pytest.fixture
def boards():
    """start(name, **server_options) -> BoardThread, stopped after the test."""
    started: list[BoardThread] = []

    def start(name: str, **server_options) -> BoardThread:
        running = BoardThread(name, **server_options)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.thread is not None and running.thread.is_alive():
            running.stop()


def record_staged_pages(board: BoardThread) -> list[bytes]:
    """Every page a board's server was given to stage, serialized as it arrived."""
    received: list[bytes] = []
    service = board.server.service
    original = service._on_stage_pages

    def recording(request):
        received.extend(page.SerializeToString() for page in request.stage_pages.chunk.pages)
        return original(request)

    service._on_stage_pages = recording
    return received


def run(coroutine: Awaitable[T], timeout: float = 60.0) -> T:
    """Runs a test's coroutine on a fresh loop, failing it if it hangs."""
    async def guarded() -> T:
        return await asyncio.wait_for(coroutine, timeout)
    return asyncio.run(guarded())


async def eventually(check: Callable[[], Any], what: str,
                     timeout: float = DEADLINE, interval: float = 0.05) -> Any:
    """Polls ``check`` (plain or async) until it returns something truthy, within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


def wait_for(check: Callable[[], Any], what: str, timeout: float = DEADLINE,
             interval: float = 0.05) -> Any:
    """The blocking twin of ``eventually``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def counts(texts) -> list[int]:
    """The numbers of a counter's ``count N elapsed_ms M`` lines."""
    return [int(m[1]) for text in texts if (m := COUNT.match(text))]


def assert_continues(before: list[int], after: list[int]) -> None:
    """The restored counter picks up at the next number: none repeated, none missing."""
    assert before, "the source logged no count"
    assert before == list(range(1, len(before) + 1)), before
    assert len(after) >= 2, f"the restored counter logged {after}"
    assert after == list(range(before[-1] + 1, before[-1] + 1 + len(after))), \
        f"source ended at {before[-1]}, target logged {after}"


class AgentThread:
    """A real agent (grpc.aio server) on its own event loop thread, and sync stubs to it.

    Plaintext on loopback, unless ``options`` has ``tls`` (migrate.security.TlsConfig):
    then the stubs speak mutual TLS with ``client_tls`` (the coordinator's, say)."""

    def __init__(self, board_url: str, *, client_tls=None, **options):
        """``options`` go to migrate.agent.server.start (session_idle_timeout, tls, ...)."""
        # Plaintext agents of these tests stage the unsigned checkpoints they are given.
        options.setdefault("allow_unsigned", options.get("tls") is None)
        import grpc
        from grpc_health.v1 import health_pb2_grpc

        from migrate import rpc
        from migrate.agent.server import start
        from migrate.security import channel_credentials, target_name_options
        from migrate.v1 import agent_pb2_grpc

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="agent loop",
                                       daemon=True)
        self.thread.start()
        # A short backoff cap keeps the reconnect tests quick.
        self.agent = self.call(start(board_url, "127.0.0.1:0", **{"timeout": 10,
                                                                   "max_backoff": 0.5,
                                                                   **options}))
        self.address = self.agent.address
        if options.get("tls") is None:
            self.channel = grpc.insecure_channel(self.address, options=rpc.CHANNEL_OPTIONS)
        else:
            self.channel = grpc.secure_channel(
                self.address, channel_credentials(client_tls),
                options=rpc.CHANNEL_OPTIONS + target_name_options(options["tls"].identity))
        self.stub = agent_pb2_grpc.AgentServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def call(self, coroutine: Awaitable[T], timeout: float = DEADLINE) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def status(self, service: str = "") -> int:
        from grpc_health.v1 import health_pb2
        return self.health.Check(health_pb2.HealthCheckRequest(service=service),
                                 timeout=5).status

    def close(self) -> None:
        self.channel.close()
        try:
            self.call(self.agent.stop(grace=0))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(DEADLINE)
            self.loop.close()


def serving_agent(board: BoardThread, url: str | None = None, **options) -> AgentThread:
    """An agent of ``board`` (reached at ``url``, default the board's own) once it serves."""
    from migrate import rpc

    agent = AgentThread(url or board.url, **options)
    try:
        wait_for(lambda: agent.status() == rpc.SERVING, f"the agent of {board.name} serving")
    except BaseException:
        agent.close()
        raise
    return agent


@pytest.fixture
def agents():
    """start(board: BoardThread, url=None, **options) -> AgentThread whose board link is up;
    closed after the test."""
    started: list[AgentThread] = []

    def start(board: BoardThread, url: str | None = None, **options) -> AgentThread:
        agent = serving_agent(board, url, **options)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.close()


class Pair:
    """Two boards with their agents, shared by the tests of a module that leave them as
    they found them; counter runs on A."""

    def __init__(self) -> None:
        self.a, self.b = BoardThread("boardA"), BoardThread("boardB")
        self.source = serving_agent(self.a)
        self.target = serving_agent(self.b)

    def close(self) -> None:
        for agent in (self.source, self.target):
            agent.close()
        self.a.stop()
        self.b.stop()


@pytest.fixture(scope="module")
def pair():
    running = Pair()
    yield running
    running.close()
