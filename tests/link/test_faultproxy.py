import os
import socket
import threading

import pytest

from genode_cr.link import BlockingLink, FaultInjector, FaultProxy, Faults, SocketPort


def frames(n: int) -> bytes:
    return b"".join(bytes([1 + i % 250]) * (5 + i % 40) + b"\x00" for i in range(n))


def run(injector: FaultInjector, data: bytes, chunk: int = 97, now: float = 0.0) -> list[tuple[float, bytes]]:
    out = []
    for i in range(0, len(data), chunk):
        out += injector.feed(data[i : i + chunk], now)
    return out


def test_same_seed_same_damage_whatever_the_chunking():
    faults = Faults(drop=0.1, corrupt=0.1, duplicate=0.1, garbage=0.05)
    data = frames(2000)
    first = b"".join(p for _, p in run(FaultInjector(faults, seed=5), data, chunk=97))
    again = b"".join(p for _, p in run(FaultInjector(faults, seed=5), data, chunk=1000))
    other = b"".join(p for _, p in run(FaultInjector(faults, seed=6), data, chunk=97))
    assert first == again != other


def test_units_are_frames_and_fates_follow_the_odds():
    injector = FaultInjector(Faults(drop=0.1, duplicate=0.05), seed=1)
    out = [p for _, p in run(injector, frames(10_000))]
    assert all(p.endswith(b"\x00") and p.count(b"\x00") == 1 for p in out)
    counts = injector.counts
    assert 800 < counts["dropped"] < 1200
    assert 350 < counts["duplicated"] < 650
    assert len(out) == counts["passed"] + counts["duplicated"]


def test_corruption_flips_bits_in_place():
    injector = FaultInjector(Faults(corrupt=1.0), seed=2)
    data = frames(300)
    out = b"".join(p for _, p in run(injector, data))
    assert len(out) == len(data) and out != data
    flipped = sum(bin(x ^ y).count("1") for x, y in zip(out, data))
    assert 300 <= flipped <= 900


def test_delay_keeps_order_and_cut_silences_the_line():
    injector = FaultInjector(Faults(delay=0.5), seed=3)
    out = injector.feed(frames(50), now=10.0)
    releases = [t for t, _ in out]
    assert releases == sorted(releases) and releases[0] >= 10.0 and releases[-1] <= 10.5
    injector.cut(now=11.0, duration=2.0)
    assert injector.feed(frames(5), now=12.9) == []
    assert injector.counts["cut_bytes"] > 0
    assert injector.feed(frames(5), now=13.0) != []


def test_without_delimiter_units_are_chunks():
    injector = FaultInjector(Faults(duplicate=1.0, delimiter=None), seed=4)
    assert [p for _, p in injector.feed(b"abc\x00def", 0.0)] == [b"abc\x00def"] * 2


@pytest.fixture
def echo_server():
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[:2]
    server.close()
    thread.join(5)


def test_clean_proxy_relays_both_ways_and_joins_its_threads(echo_server):
    payload = os.urandom(200_000)
    with FaultProxy(echo_server) as proxy:
        with socket.create_connection(proxy.address) as client:
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)
            got = bytearray()
            while data := client.recv(65536):
                got += data
        assert bytes(got) == payload
        assert proxy.counts("up")["passed"] >= 1 and proxy.counts("down")["passed"] >= 1
    assert not [t for t in threading.enumerate() if t.name.startswith("faultproxy")]


def test_link_survives_the_line_being_cut_for_a_while():
    server = socket.create_server(("127.0.0.1", 0))
    options = dict(rto=0.1, dead_after=5.0, keepalive=0.5)
    with server, FaultProxy(server.getsockname()[:2]) as proxy:
        ends = {}
        acceptor = threading.Thread(target=lambda: ends.setdefault("b", BlockingLink(SocketPort(server.accept()[0]), **options)))
        acceptor.start()
        a = BlockingLink.open(proxy.url, **options)
        acceptor.join()
        b = ends["b"]
        try:
            a.send(b"before")
            assert b.receive(timeout=10) == b"before"
            proxy.cut(1.0)
            messages = [os.urandom(3000) for _ in range(20)]
            for m in messages:
                a.send(m)
            assert [b.receive(timeout=10) for _ in messages] == messages
            assert a.stats.timeouts > 0
            assert proxy.counts()["cut_bytes"] > 0
        finally:
            a.close()
            b.close()
