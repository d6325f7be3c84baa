"""One suite, every transport: the same traffic must arrive whole and in order.

The ``line`` fixture builds two connected ends over each kind of line:

  memory          ports.memory_pair(), blocking transport
  loop            two pyserial loop:// ports crossed (ports.loop_pair), blocking
  tcp             real TCP on 127.0.0.1: one end opens socket://127.0.0.1:PORT
                  with pyserial, the other is the accepted socket (port 0)
  memory+faults   memory_pair() with a FaultInjector on each direction
  tcp+faultproxy  tcp, through faultproxy.FaultProxy
  async-memory    asyncio transport over memory_pair()
  async-tcp+faultproxy  asyncio transport, socket:// through the fault proxy

Faulty lines corrupt 1 % of frames and drop, duplicate and garble some.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from genode_cr.link import (
    AsyncLink,
    BlockingLink,
    FaultProxy,
    Faults,
    LinkReset,
    LinkState,
    LinkStats,
    SocketPort,
    loop_pair,
    memory_pair,
)

OPTIONS = dict(rto=0.1, dead_after=10.0, keepalive=0.5, handshake_timeout=10.0)
FAULTS = Faults(corrupt=0.01, drop=0.005, duplicate=0.005, garbage=0.002)
TIMEOUT = 60.0


class AsyncRunner:
    """An event loop on a thread, so the suite can drive AsyncLink from plain threads."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class AsyncEnd:
    """An AsyncLink behind BlockingLink's method names."""

    def __init__(self, runner: AsyncRunner, link: AsyncLink) -> None:
        self.runner, self.link = runner, link

    def send(self, payload: bytes, timeout: float | None = None) -> None:
        self.runner.call(self.link.send(payload, timeout))

    def receive(self, timeout: float | None = None) -> bytes:
        return self.runner.call(self.link.receive(timeout))

    def close(self) -> None:
        self.runner.call(self.link.close())

    @property
    def state(self) -> LinkState:
        return self.link.state

    @property
    def stats(self) -> LinkStats:
        return self.link.stats


@dataclass
class Line:
    a: Any = None
    b: Any = None
    faulty: bool = False
    heal: Callable[[], None] = lambda: None
    fault_counts: Callable[[], Counter] = Counter
    cleanup: list[Callable[[], None]] = field(default_factory=list)


def tcp_pair(line: Line, make_client: Callable[[str], Any], make_server: Callable[[socket.socket], Any], proxy: bool):
    server = socket.create_server(("127.0.0.1", 0))
    line.cleanup.append(server.close)
    url = "socket://127.0.0.1:%d" % server.getsockname()[1]
    if proxy:
        fault_proxy = FaultProxy(server.getsockname()[:2], FAULTS, seed=42)
        line.cleanup.append(fault_proxy.close)
        url = fault_proxy.url
        line.faulty = True
        line.heal = lambda: fault_proxy.set_faults(Faults())
        line.fault_counts = fault_proxy.counts
    ends: dict[str, Any] = {}
    acceptor = threading.Thread(target=lambda: ends.setdefault("b", make_server(server.accept()[0])))
    acceptor.start()
    ends["a"] = make_client(url)  # returns once the handshake is done, so b exists
    acceptor.join()
    line.a, line.b = ends["a"], ends["b"]


def memory_line(line: Line, faulty: bool, wrap: Callable[[Any], Any]) -> None:
    faults = FAULTS if faulty else None
    pa, pb = memory_pair(faults, faults, seed=42)
    line.a, line.b = wrap(pa), wrap(pb)
    if faulty:
        line.faulty = True

        def heal() -> None:
            for port in (pa, pb):
                port.tx_injector.faults = Faults()

        line.heal = heal
        line.fault_counts = lambda: pa.tx_injector.counts + pb.tx_injector.counts


def build(kind: str, line: Line) -> None:
    blocking = lambda port: BlockingLink(port, **OPTIONS)  # noqa: E731
    if kind in ("memory", "memory+faults"):
        memory_line(line, kind.endswith("faults"), blocking)
    elif kind == "loop":
        pa, pb = loop_pair()
        line.a, line.b = blocking(pa), blocking(pb)
    elif kind in ("tcp", "tcp+faultproxy"):
        tcp_pair(
            line,
            lambda url: BlockingLink.open(url, connect_timeout=10, **OPTIONS),
            lambda sock: blocking(SocketPort(sock)),
            proxy=kind.endswith("proxy"),
        )
    elif kind.startswith("async-"):
        runner = AsyncRunner()
        line.cleanup.append(runner.stop)

        async def make(port):
            return AsyncLink(port, **OPTIONS)

        async def open_url(url):
            return await AsyncLink.open(url, connect_timeout=10, **OPTIONS)

        if kind == "async-memory":
            memory_line(line, False, lambda port: AsyncEnd(runner, runner.call(make(port))))
        else:
            tcp_pair(
                line,
                lambda url: AsyncEnd(runner, runner.call(open_url(url))),
                lambda sock: AsyncEnd(runner, runner.call(make(SocketPort(sock)))),
                proxy=True,
            )
    else:
        raise AssertionError(kind)


KINDS = [
    "memory",
    # pyserial's loop:// moves one byte per queue operation: seconds per megabyte.
    pytest.param("loop", marks=pytest.mark.slow),
    "tcp",
    "memory+faults",
    "tcp+faultproxy",
    "async-memory",
    "async-tcp+faultproxy",
]


@pytest.fixture(params=KINDS)
def line(request):
    line = Line()
    try:
        build(request.param, line)
        yield line
    finally:
        for end in (line.a, line.b):
            if end is not None:
                end.close()
        for undo in reversed(line.cleanup):
            undo()


def traffic(seed: int, big: int) -> list[bytes]:
    rng = random.Random(seed)
    sizes = [0, 1, 2, 100, 1023, 1024, 1025, 4096, 3, 777, 65536, 9000]
    messages = [os.urandom(rng.choice(sizes)) for _ in range(80)]
    messages.insert(40, os.urandom(big))
    return messages


def exchange(line: Line, a_to_b: list[bytes], b_to_a: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """Send both lists at once, each end also receiving; return what each end got."""
    got: dict[str, list[bytes]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def guarded(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        return run

    def sender(end, messages):
        for m in messages:
            end.send(m, timeout=TIMEOUT)

    def receiver(end, name, count):
        for _ in range(count):
            got[name].append(end.receive(timeout=TIMEOUT))

    threads = [
        threading.Thread(target=guarded(lambda: sender(line.a, a_to_b))),
        threading.Thread(target=guarded(lambda: sender(line.b, b_to_a))),
        threading.Thread(target=guarded(lambda: receiver(line.b, "b", len(a_to_b)))),
        threading.Thread(target=guarded(lambda: receiver(line.a, "a", len(b_to_a)))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return got["b"], got["a"]


def test_messages_of_all_sizes_both_ways_arrive_whole_and_in_order(line):
    a_to_b, b_to_a = traffic(1, 256 * 1024), traffic(2, 256 * 1024 + 17)
    at_b, at_a = exchange(line, a_to_b, b_to_a)
    # Compare lengths first: a mismatch then reads as a count, not a 256 KiB diff.
    assert [len(m) for m in at_b] == [len(m) for m in a_to_b]
    assert at_b == a_to_b
    assert [len(m) for m in at_a] == [len(m) for m in b_to_a]
    assert at_a == b_to_a
    assert line.a.state is line.b.state is LinkState.OPEN
    if line.faulty:
        counts = line.fault_counts()
        assert counts["corrupted"] > 0 and counts["dropped"] > 0 and counts["duplicated"] > 0
        a, b = line.a.stats, line.b.stats
        assert a.dropped_frames + b.dropped_frames > 0
        assert a.frames_retransmitted + b.frames_retransmitted > 0


def test_a_burst_of_small_messages_keeps_its_order(line):
    burst = [i.to_bytes(4, "little") for i in range(500)]
    at_b, at_a = exchange(line, burst, burst[::-1])
    assert at_b == burst and at_a == burst[::-1]


def test_receive_times_out_when_nothing_comes(line):
    with pytest.raises(TimeoutError):
        line.b.receive(timeout=0.2)
    line.a.send(b"late")
    assert line.b.receive(timeout=TIMEOUT) == b"late"


def test_closing_one_end_resets_the_other(line):
    line.heal()  # a RESET is sent once, best effort: let this one through
    line.a.send(b"last words")
    assert line.b.receive(timeout=TIMEOUT) == b"last words"
    line.a.close()
    with pytest.raises(LinkReset):
        line.b.receive(timeout=TIMEOUT)
    assert line.b.state is LinkState.HANDSHAKE
