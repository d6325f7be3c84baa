"""Restores that arrive in rounds, as live migration sends them."""

import pytest

from genode_cr import errors

from .conftest import errors_in, steps
from .test_refusals import board_state


def test_rounds_fill_memory_before_the_commit(make_board):
    a, b = make_board("boardA"), make_board("boardB")
    a.cr.start("kvstore")
    a.run(0.6)
    restorer = b.cr.restorer()
    previous = a.cr.checkpoint("kvstore")
    restorer.stage(previous)
    for _ in range(3):
        a.run(0.3)                       # the source keeps running meanwhile
        previous = a.cr.checkpoint("kvstore", since=previous)
        restorer.stage(previous)
        b.run(0.1)                       # and so does the target board
    assert restorer.report.pages_written > 0
    assert not b.cr.children, "nothing may run before the commit"
    assert b.free_ram == b.ram - a.cr.info("kvstore").ram_quota, "staging must hold its quota"

    final = a.cr.checkpoint("kvstore", since=previous, freeze=True)
    restorer.stage(final)
    child, report = restorer.commit()
    b.cr.adopt(child)
    assert report.rounds == 5 and report.chain_length == 5
    b.run(0.8)
    assert min(steps(b)) == max(steps(a)) + 1
    assert not errors_in(b, "kvstore")


def test_abort_leaves_the_board_as_it_was(make_board):
    a, b = make_board("boardA"), make_board("boardB")
    a.cr.start("counter")
    a.run(0.5)
    before = board_state(b)
    restorer = b.cr.restorer()
    full = a.cr.checkpoint("counter")
    restorer.stage(full)
    a.run(0.3)
    restorer.stage(a.cr.checkpoint("counter", since=full))
    assert board_state(b) != before
    restorer.abort()
    assert board_state(b) == before


def test_a_round_out_of_order_is_refused_and_the_staging_survives(make_board):
    a, b = make_board("boardA"), make_board("boardB")
    a.cr.start("counter")
    a.run(0.5)
    full = a.cr.checkpoint("counter")
    a.run(0.3)
    first = a.cr.checkpoint("counter", since=full)
    a.run(0.3)
    second = a.cr.checkpoint("counter", since=first, freeze=True)
    restorer = b.cr.restorer()
    with pytest.raises(errors.BrokenChain):
        restorer.stage(first)            # an incremental cannot come first
    restorer.stage(full)
    with pytest.raises(errors.BrokenChain):
        restorer.stage(second)           # the middle round is missing
    restorer.stage(first)
    restorer.stage(second)
    b.cr.adopt(restorer.commit()[0])
    b.run(0.5)
    assert not errors_in(b, "counter")


def test_a_refused_first_round_leaves_the_restorer_usable(make_board, rom_dir):
    from genode_cr.emu import Board
    a = make_board("boardA")
    a.cr.start("counter")
    a.run(0.5)
    full = a.cr.checkpoint("counter")
    target = Board("boardB", roms={"ticker": (rom_dir / "ticker").read_bytes()})
    restorer = target.cr.restorer()
    with pytest.raises(errors.RomMissing):
        restorer.stage(full)
    target.add_rom("counter", a.rom("counter").data)
    restorer.stage(full)
    target.cr.adopt(restorer.commit()[0])
    target.run(0.5)
    assert not errors_in(target, "counter")


def test_a_chain_without_a_full_checkpoint_is_broken():
    from genode_cr.checkpoint import Checkpoint, order_chain
    from genode_cr.v1 import checkpoint_pb2 as pb
    loop = [Checkpoint(pb.Manifest(id="a", parent_id="b")),
            Checkpoint(pb.Manifest(id="b", parent_id="a"))]
    with pytest.raises(errors.BrokenChain, match="no full checkpoint"):
        order_chain(loop)
