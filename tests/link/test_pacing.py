"""The pacer on a fake clock: rates are checked in virtual time, never on the wall clock."""

import pytest

from genode_cr.link import PacedPort, Pacer, line_rate


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Recorder:
    def __init__(self, clock) -> None:
        self.clock = clock
        self.writes: list[tuple[float, bytes]] = []
        self.timeout = None

    def write(self, data: bytes) -> int:
        self.writes.append((self.clock(), bytes(data)))
        return len(data)


def test_line_rate_counts_ten_bits_per_byte():
    assert line_rate(921600) == 92160.0
    assert line_rate(115200) == 11520.0


def test_pacer_holds_the_rate_and_makes_up_for_late_wakeups():
    t = FakeTime()
    pacer = Pacer(1000.0, clock=t.clock, sleep=t.sleep)
    for _ in range(100):
        pacer.wait(10)
        t.now += 0.0003  # the writer itself takes time, and wakes up late
    # 1000 bytes at 1000 B/s: the 100th slice starts at 0.99 s.
    assert t.now - 100.0 == pytest.approx(0.99 + 0.0003, abs=1e-9)


def test_idle_line_banks_no_credit():
    t = FakeTime()
    pacer = Pacer(1000.0, clock=t.clock, sleep=t.sleep)
    pacer.wait(100)
    t.now += 5.0  # a long pause
    pacer.wait(100)
    assert t.slept == []
    pacer.wait(100)
    assert t.slept == [pytest.approx(0.1)]


def test_paced_port_trickles_every_byte_in_order():
    t = FakeTime()
    inner = Recorder(t.clock)
    rate = line_rate(921600)
    port = PacedPort(inner, 921600, pacer=Pacer(rate, clock=t.clock, sleep=t.sleep))
    data = bytes(range(256)) * 8
    assert port.write(data) == len(data)
    assert b"".join(chunk for _, chunk in inner.writes) == data
    # Slices of 2 ms of line time: 184 bytes at 92160 B/s.
    assert [len(chunk) for _, chunk in inner.writes] == [184] * 11 + [2048 - 11 * 184]
    starts = [when for when, _ in inner.writes]
    assert starts[-1] - starts[0] == pytest.approx(11 * 184 / rate)


def test_paced_port_passes_settings_to_the_inner_port():
    inner = Recorder(lambda: 0.0)
    port = PacedPort(inner, 115200)
    port.timeout = 0.25
    assert inner.timeout == 0.25 and port.timeout == 0.25
    assert port.preferred_write_size == 1


class Source:
    """The far end wrote a burst at once (an unpaced agent over a socket)."""

    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)
        self.timeout = None

    def read(self, size: int = 1) -> bytes:
        chunk, self.data[:size] = bytes(self.data[:size]), b""
        return chunk


def test_paced_port_delivers_a_burst_at_the_line_rate():
    t = FakeTime()
    rate = line_rate(921600)
    data = bytes(range(256)) * 36            # 9216 bytes: 0.1 s of line time
    port = PacedPort(Source(data), 921600, pacer=Pacer(rate, clock=t.clock, sleep=t.sleep),
                     rx_pacer=Pacer(rate, clock=t.clock, sleep=t.sleep))
    received = bytearray()
    while chunk := port.read(4096):
        assert len(chunk) <= 184             # a slice of line time at most
        received += chunk
    assert bytes(received) == data
    # Held to the rate: 0.1 s of virtual time, give or take the last slice.
    assert t.now - 100.0 == pytest.approx(len(data) / rate, abs=184 / rate)


def test_reads_can_be_left_unpaced():
    port = PacedPort(Source(b"x" * 1000), 921600, pace_reads=False)
    assert port.read(1000) == b"x" * 1000
