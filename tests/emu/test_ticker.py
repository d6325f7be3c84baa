"""The multi-threaded ticker: badges, signal IRQs and RPC gates after a move,
and proof that it notices a restore that leaves any of them wrong."""

import re

import pytest

from .conftest import errors_in

TICK = re.compile(r"^tick (\d+)$")
ANSWER = re.compile(r"^entrypoint answered ticks (\d+)$")


def ticks(board):
    return [int(m[1]) for m in map(TICK.match, board.log("ticker")) if m]


def answers(board):
    return [int(m[1]) for m in map(ANSWER.match, board.log("ticker")) if m]


def checks(board):
    return [line for line in board.log("ticker") if line.startswith("badge check ok")]


@pytest.fixture
def ticker_checkpoint(make_board):
    a = make_board("boardA")
    a.cr.start("ticker")
    a.run(2.2)
    assert checks(a) and answers(a) and not errors_in(a, "ticker")
    return a, a.cr.checkpoint("ticker", freeze=True)


def test_ticker_keeps_working_after_restore(make_board, ticker_checkpoint):
    a, checkpoint = ticker_checkpoint
    b = make_board("boardB")
    report = b.cr.restore(checkpoint)
    b.run(3.0)

    assert not errors_in(b, "ticker"), b.log("ticker")
    assert ticks(b)[0] > ticks(a)[-1], "ticks restarted instead of continuing"
    assert len(ticks(b)) >= 5, "signals stopped arriving"
    assert len(checks(b)) >= 2, "the badge check never ran after the move"
    assert len(answers(b)) >= 4 and answers(b)[0] >= answers(a)[-1]
    assert report.irqs_rebound == 3 and report.rpc_gates == 1
    assert report.threads == 4
    kinds = {t.kind for t in report.translations}
    assert {"parent", "pd", "thread", "irq", "signal_context", "rpc_gate", "timer"} <= kinds
    assert len({t.old_badge for t in report.translations}) == len(report.translations)


def test_cap_map_matches_cap_space_after_restore(make_board, ticker_checkpoint):
    """Every used entry of the map in child memory names the object the
    kernel has in that slot: the invariant base-foc relies on."""
    from genode_cr.emu.capture import read_cap_map

    _, checkpoint = ticker_checkpoint
    b = make_board("boardB")
    b.cr.restore(checkpoint)
    child = b.cr.children["ticker"]
    entries = read_cap_map(child)
    assert len(entries) > 10
    for index, (badge, _) in entries.items():
        obj = child.pd.cap_space.lookup(index << 12)
        assert obj is not None, f"slot {index:#x} is empty in the cap space"
        assert obj.badge == badge, f"slot {index:#x}: map says {badge}, kernel has {obj.badge}"
    raw_parent = child.pd.read(checkpoint.manifest.parent_cap_addr, 8)
    assert int.from_bytes(raw_parent[4:], "little") == child.parent.badge


@pytest.mark.parametrize("skipped, symptom", [
    ("translate_badges", "badge check failed"),
    ("rebind_irqs", "signal receive failed"),
    ("recreate_native_caps", "entrypoint call failed"),
])
def test_broken_restore_fails_visibly(make_board, ticker_checkpoint, skipped, symptom):
    _, checkpoint = ticker_checkpoint
    b = make_board("boardB")
    report = b.cr.restore(checkpoint, skip=[skipped])
    b.run(3.0)
    assert report.skipped == [skipped]
    assert any(symptom in line for line in errors_in(b, "ticker")), b.log("ticker")


def test_same_checkpoint_restores_cleanly_when_nothing_is_skipped(make_board, ticker_checkpoint):
    """The control for the test above: the same checkpoint, nothing skipped."""
    _, checkpoint = ticker_checkpoint
    b = make_board("boardB")
    b.cr.restore(checkpoint)
    b.run(3.0)
    assert not errors_in(b, "ticker")
