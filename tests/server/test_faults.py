"""Moves over bad lines: they complete correctly, or fail clearly once the
line stays dead past the timeout, and never leave a half-restored component."""

import re
import time

import pytest

from genode_cr import errors
from genode_cr.link import Faults

from .test_board_protocol import wait_for

STEP = re.compile(r"^step (\d+) ")
LOSSY = Faults(drop=0.02, corrupt=0.01, duplicate=0.01, garbage=0.01, delay=0.002)


def kvstore_steps(client):
    return [int(m[1]) for m in (STEP.match(l.text) for l in client.logs("kvstore")) if m]


@pytest.mark.slow
def test_move_over_a_lossy_line(memory_boards):
    a = memory_boards("boardA", faults=LOSSY, rto=0.05)
    b = memory_boards("boardB", faults=LOSSY, rto=0.05)
    with a.connect() as source, b.connect() as target:
        source.start("kvstore")
        wait_for(lambda: len(kvstore_steps(source)) >= 8)
        full = source.checkpoint("kvstore")
        final = source.checkpoint("kvstore", since=full, freeze=True)
        last = max(kvstore_steps(source))
        report = target.restore([full, final])
        assert report.pages_written > 100
        wait_for(lambda: len(kvstore_steps(target)) >= 3)
        assert min(kvstore_steps(target)) == last + 1
        assert not [l for l in target.logs("kvstore") if "Error" in l.text]
        damaged = a.client_port.tx_injector.counts + a.board_port.tx_injector.counts
        assert damaged["dropped"] and damaged["corrupted"], damaged
        assert source.link.stats.frames_retransmitted or a._link.stats.frames_retransmitted


def test_a_short_cut_is_ridden_out(memory_boards):
    a = memory_boards("boardA", faults=Faults(), rto=0.05)
    with a.connect() as client:
        client.start("kvstore")
        wait_for(lambda: len(kvstore_steps(client)) >= 5)
        now = time.monotonic()
        a.board_port.tx_injector.cut(now, 1.0)
        a.client_port.tx_injector.cut(now, 1.0)
        checkpoint = client.checkpoint("kvstore")
        checkpoint.verify()
        assert checkpoint.pages


def test_a_line_dead_past_the_timeout_fails_clearly_and_restores_nothing(memory_boards):
    a = memory_boards("boardA")
    b = memory_boards("boardB", faults=Faults(), rto=0.05, dead_after=1.5)
    with a.connect() as source:
        source.start("counter")
        wait_for(lambda: len(source.logs("counter")) >= 3)
        checkpoint = source.checkpoint("counter")
        target = b.connect(timeout=5)
        free = target.info.ram_free
        session = target.begin_restore()

        def cut_now():
            now = time.monotonic()
            b.board_port.tx_injector.cut(now, 30)
            b.client_port.tx_injector.cut(now, 30)

        cut_now()
        with pytest.raises(errors.BoardUnreachable):
            target.stage(session, checkpoint)
            target.commit_restore(session)
        target.close()
        # The board noticed the dead line too and dropped what was staged.
        b.thread.join(10)
        assert not b.thread.is_alive()
        assert b.board.cr.components() == [] and b.board.cr.staged == []
        assert b.board.free_ram == free
        # And the component still runs where it was.
        assert [c.state for c in source.components()] == ["running"]
