"""What only the transports do: opening, port failures, backpressure, restarts, closing."""

import asyncio
import socket
import threading
import time

import pytest

from genode_cr.link import (
    AsyncLink,
    BlockingLink,
    LinkDead,
    LinkReset,
    LocalLinkError,
    PeerRestarted,
    memory_pair,
)

OPTIONS = dict(rto=0.1, dead_after=5.0, keepalive=0.5)


@pytest.fixture
def pair():
    pa, pb = memory_pair()
    a, b = BlockingLink(pa, **OPTIONS), BlockingLink(pb, **OPTIONS)
    a.wait_established(5)
    b.wait_established(5)
    yield a, b
    a.close()
    b.close()


def test_a_line_that_echoes_is_not_a_peer():
    with pytest.raises(LinkDead, match="dropped_echo"):
        BlockingLink.open("loop://", connect_timeout=0.5)


def test_silent_peer_fails_the_open():
    server = socket.create_server(("127.0.0.1", 0))
    with server:
        with pytest.raises(LinkDead, match="no handshake"):
            BlockingLink.open("socket://127.0.0.1:%d" % server.getsockname()[1], connect_timeout=0.5)


def test_port_failure_surfaces_as_link_dead(pair):
    a, b = pair
    b._pump.port.close()  # the cable is pulled under b
    with pytest.raises(LinkDead, match="port failed"):
        a.receive(timeout=5)
    with pytest.raises(LinkDead):
        a.send(b"x")


def test_use_after_close_is_a_local_error(pair):
    a, _ = pair
    a.close()
    with pytest.raises(LocalLinkError):
        a.send(b"x")
    with pytest.raises(LocalLinkError):
        a.receive(timeout=1)


def test_send_blocks_while_the_peer_does_not_read():
    pa, pb = memory_pair()
    a = BlockingLink(pa, max_send_buffer=8192, **OPTIONS)
    b = BlockingLink(pb, max_pending=4096, **OPTIONS)
    try:
        a.wait_established(5)
        with pytest.raises(TimeoutError):
            for _ in range(100):
                a.send(bytes(1000), timeout=0.5)
        assert b.stats.dropped_busy > 0
        assert a.link.send_buffered <= 8192
        # Reading makes room; everything queued then arrives.
        for _ in range(10):
            b.receive(timeout=10)
        assert b.stats.messages_received >= 10
    finally:
        a.close()
        b.close()


class Unplug:
    """A port that can 'crash' its user: writes vanish, reads see nothing, close keeps the line."""

    def __init__(self, port):
        self.port, self.dead = port, False

    @property
    def timeout(self):
        return self.port.timeout

    @timeout.setter
    def timeout(self, value):
        self.port.timeout = value

    def read(self, size=1):
        if self.dead:
            time.sleep(0.01)
            return b""
        return self.port.read(size)

    def write(self, data):
        return len(data) if self.dead else self.port.write(data)

    def close(self):
        pass


def test_peer_restart_interrupts_a_waiting_receive():
    pa, pb = memory_pair()
    a = BlockingLink(pa, **OPTIONS)
    plug = Unplug(pb)
    b1 = BlockingLink(plug, **OPTIONS)
    b2 = None
    try:
        a.wait_established(5)
        b1.wait_established(5)
        plug.dead = True
        b1.close()  # its RESET is swallowed: as far as a knows, b1 simply vanished
        a.send(b"request")
        b2 = BlockingLink(pb, **OPTIONS)  # the board reboots on the same line
        with pytest.raises(LinkReset) as info:
            a.receive(timeout=10)
        event = info.value.event
        assert isinstance(event, PeerRestarted)
        assert (event.old_epoch, event.new_epoch) == (b1.link.our_epoch, b2.link.our_epoch)
        b2.send(b"hello after reboot")
        assert a.receive(timeout=10) == b"hello after reboot"
    finally:
        a.close()
        if b2:
            b2.close()


def test_async_link_open_failure_and_port_failure():
    async def main():
        with pytest.raises(LinkDead, match="no handshake"):
            await AsyncLink.open("loop://", connect_timeout=0.3)
        pa, pb = memory_pair()
        a, b = AsyncLink(pa, **OPTIONS), AsyncLink(pb, **OPTIONS)
        await asyncio.gather(a.wait_established(5), b.wait_established(5))
        await b.send(b"ping")
        assert await a.receive(timeout=5) == b"ping"
        with pytest.raises(TimeoutError):
            await a.receive(timeout=0.1)
        pb.close()
        with pytest.raises(LinkDead):
            await a.receive(timeout=5)
        await a.close()
        await b.close()

    asyncio.run(main())
    assert not [t for t in threading.enumerate() if t.name.startswith("link-")]


def test_open_port_configures_and_paces_only_when_asked():
    from genode_cr.link import PacedPort
    from genode_cr.link._pump import open_port

    plain = open_port("loop://", 115200)
    paced = open_port("loop://", 921600, pace=True)
    try:
        assert plain.baudrate == 115200 and not isinstance(plain, PacedPort)
        assert isinstance(paced, PacedPort) and paced.baudrate == 921600
        assert paced.pacer.rate == 92160
    finally:
        plain.close()
        paced.close()
    with pytest.raises(ValueError):
        open_port("loop://", pace=True)
