"""Moving the counter between two board processes with nothing but `genode-cr`."""

from __future__ import annotations

import json
import time

import pytest

from genode_cr.link import FaultInjector, FaultProxy, Faults

from .conftest import COMMAND_DEADLINE, assert_continues, counts, failed, ok

#: Lines the restored counter must log (one every 200 ms) before we look closely.
WANT_AFTER = 4


def logs_once_enough(cli, url: str, want: int) -> str:
    """The counter's log on ``url`` once it holds ``want`` count lines (guarded by a deadline)."""
    deadline = time.monotonic() + COMMAND_DEADLINE
    while True:
        text = ok(cli("-b", url, "logs", "counter")).stdout
        if len(counts(text)) >= want or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


@pytest.mark.slow
def test_acceptance_move_counter_from_a_to_b(board_server, cli, tmp_path):
    a, b = board_server("boardA"), board_server("boardB")
    ok(cli("-b", a.url, "start", "counter"))
    time.sleep(1.5)
    file = tmp_path / "counter.ckpt"
    ok(cli("-b", a.url, "checkpoint", "counter", "-o", file, "--freeze"))
    before = counts(ok(cli("-b", a.url, "logs", "counter")).stdout)
    ok(cli("-b", a.url, "kill", "counter"))
    assert "counter" not in ok(cli("-b", a.url, "ps")).stdout

    restored = json.loads(ok(cli("-b", b.url, "-O", "json", "restore", file)).stdout)
    assert restored["restore"]["board"] == "boardB"
    assert restored["restore"]["component"] == "counter"
    time.sleep(1.0)
    after = counts(logs_once_enough(cli, b.url, WANT_AFTER))
    assert_continues(before, after)


def seed_with_early_corruption(connection: int, within: int = 4) -> int:
    """A FaultProxy seed under which the ``connection``-th connection's board-to-CLI
    direction has a corrupted frame among its first ``within`` frames.

    The rate stays 1 %; the seed only makes sure the few frames of a small
    checkpoint meet the damage (FaultProxy seeds each direction of connection i
    with "seed/i/down"; if that changes, the corrupted-count assertion says so).
    """
    for seed in range(100_000):
        injector = FaultInjector(Faults(corrupt=0.01), seed=f"{seed}/{connection}/down")
        for _ in range(within):
            injector.feed(b"frame\x00", 0.0)
        if injector.counts["corrupted"]:
            return seed
    return 0


@pytest.mark.slow
def test_move_through_a_line_that_corrupts_one_frame_in_a_hundred(board_server, cli, tmp_path):
    a, b = board_server("boardA"), board_server("boardB")
    file = tmp_path / "counter.ckpt"
    # Connections through the proxy: 0 start, 1 checkpoint, 2 logs, 3 kill.
    seed = seed_with_early_corruption(connection=1)
    with FaultProxy(("127.0.0.1", a.port), Faults(corrupt=0.01), seed=seed) as proxy:
        ok(cli("-b", proxy.url, "start", "counter"))
        time.sleep(1.5)
        taken = json.loads(ok(cli("-b", proxy.url, "-O", "json", "checkpoint", "counter",
                                  "-o", file, "--freeze")).stdout)["checkpoint"]
        before = counts(ok(cli("-b", proxy.url, "logs", "counter")).stdout)
        ok(cli("-b", proxy.url, "kill", "counter"))
        damage = proxy.counts()
    assert damage["corrupted"] >= 1, f"the line damaged nothing: {dict(damage)}"
    assert taken["frozen"] and taken["full"] and taken["pages"] > 0

    ok(cli("verify", file))
    ok(cli("-b", b.url, "restore", file))
    time.sleep(1.0)
    after = counts(logs_once_enough(cli, b.url, WANT_AFTER))
    assert_continues(before, after)


@pytest.mark.slow
def test_chain_of_full_and_two_incrementals_restored_in_reverse_order(board_server, cli,
                                                                      tmp_path):
    a, b = board_server("boardA"), board_server("boardB")
    full, inc1, inc2 = (tmp_path / f"{n}.ckpt" for n in ("full", "inc1", "inc2"))
    ok(cli("-b", a.url, "start", "counter"))
    time.sleep(0.6)

    def take(file, *options):
        result = ok(cli("-b", a.url, "-O", "json", "checkpoint", "counter", "-o", file, *options))
        return json.loads(result.stdout)["checkpoint"]

    first = take(full)
    time.sleep(0.5)
    second = take(inc1, "--since", full)
    time.sleep(0.5)
    third = take(inc2, "--since", inc1, "--freeze")
    assert (first["full"], second["full"], third["full"]) == (True, False, False)
    assert second["parent_id"] == first["id"] and third["parent_id"] == second["id"]
    assert not first["frozen"] and not second["frozen"] and third["frozen"]

    before = counts(ok(cli("-b", a.url, "logs", "counter")).stdout)
    ok(cli("-b", a.url, "kill", "counter"))

    chain = json.loads(ok(cli("-O", "json", "verify", inc2, full, inc1)).stdout)["chain"]
    assert chain == [first["id"], second["id"], third["id"]]

    # Without the full checkpoint the chain is refused before the board is touched.
    failed(cli("-b", b.url, "restore", inc2, inc1), 4)

    report = json.loads(ok(cli("-b", b.url, "-O", "json", "restore", inc2, inc1, full)).stdout)
    assert report["restore"]["chain_length"] == 3
    assert report["restore"]["checkpoint_id"] == third["id"]
    time.sleep(1.0)
    after = counts(logs_once_enough(cli, b.url, WANT_AFTER))
    assert_continues(before, after)
