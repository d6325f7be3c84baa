"""The board protocol, the same on every transport: in memory, over two
pyserial loop:// ports, and to a board server on a TCP socket."""

import re
import time

import pytest

from genode_cr import errors
from genode_cr.checkpoint import Checkpoint

COUNT = re.compile(r"^count (\d+) elapsed_ms \d+$")


def counts(lines):
    return [int(m[1]) for m in (COUNT.match(l.text) for l in lines) if m]


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.02)


def test_hello_reports_the_board(boards):
    a = boards("boardA")
    with a.connect() as client:
        info = client.info
        assert (info.name, info.arch, info.kernel, info.protocol_version) == \
               ("boardA", "arm32", "foc", 1)
        assert {r.name for r in info.roms} >= {"counter", "kvstore", "ticker"}
        assert all(len(r.digest) == 32 for r in info.roms)
        assert info.ram_free == info.ram_total


def test_move_over_the_link(boards):
    a, b = boards("boardA"), boards("boardB")
    with a.connect() as source, b.connect() as target:
        source.start("counter")
        wait_for(lambda: len(counts(source.logs("counter"))) >= 3)
        full = source.checkpoint("counter")
        wait_for(lambda: len(counts(source.logs("counter"))) >= 5)
        last = source.checkpoint("counter", since=full, freeze=True)
        assert source.components()[0].state == "paused"
        last_count = max(counts(source.logs("counter")))
        source.kill("counter")

        report = target.restore([last, full])
        assert report.chain_length == 2 and report.parent_cap_rewritten
        wait_for(lambda: len(counts(target.logs("counter"))) >= 3)
        moved = counts(target.logs("counter"))
        assert moved[0] == last_count + 1
        assert moved == list(range(moved[0], moved[0] + len(moved)))
        assert [c.name for c in target.components()] == ["counter"]


def test_follow_streams_new_lines(boards):
    a = boards("boardA")
    with a.connect() as client:
        client.start("counter")
        seen = []
        for line in client.follow_logs("counter", idle_timeout=10):
            seen.append(line)
            if len(counts(seen)) >= 4:
                break
        assert counts(seen) == [1, 2, 3, 4]
        # The link is usable again after cancelling the follow.
        assert client.components()[0].name == "counter"


def test_errors_arrive_as_their_own_types(boards):
    a = boards("boardA")
    with a.connect() as client:
        with pytest.raises(errors.UnknownComponent):
            client.pause("nobody")
        with pytest.raises(errors.RomMissing):
            client.start("x", rom="no-such-rom")
        client.start("counter")
        with pytest.raises(errors.NameInUse):
            client.start("counter")
        wait_for(lambda: counts(client.logs("counter")))
        checkpoint = client.checkpoint("counter")
        with pytest.raises(errors.NameInUse):
            client.restore(checkpoint)
        assert client.info.ram_free > 0
        assert [c.state for c in client.components()] == ["running"]


def test_tampered_checkpoint_is_refused_by_the_board(boards):
    a, b = boards("boardA"), boards("boardB")
    with a.connect() as source, b.connect() as target:
        source.start("counter")
        wait_for(lambda: counts(source.logs("counter")))
        checkpoint = source.checkpoint("counter")
        free_before = target.hello().ram_free
        forged = Checkpoint(checkpoint.manifest, dict(checkpoint.pages), checkpoint.root_digest)
        forged.manifest.pd.ram_quota += 4096
        with pytest.raises(errors.CheckpointCorrupt):
            target.restore(forged)
        assert target.components() == []
        assert target.hello().ram_free == free_before
