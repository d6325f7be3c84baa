"""Delta manifests: an incremental checkpoint lists a dataspace its parent also
lists as the entries that changed since (``pages_from_parent`` + ``changed``),
so a round's manifest grows with what changed, not with the component. A
restore resolves the lists along the chain; a delta list that does not fit its
parent is refused before the board changes."""

from __future__ import annotations

import re

import pytest

from genode_cr.checkpoint import PAGE_SIZE, PackedCheckpoint, resolve_pages, verify_chain
from genode_cr.errors import BrokenChain, CheckpointCorrupt
from genode_cr.v1 import checkpoint_pb2 as pb

from .conftest import errors_in, page_lists, steps
from .test_chain_equivalence import restored_state
from .test_refusals import altered, board_state, refuse

#: The migration benchmark's workload: an 8 MiB table of incompressible data whose
#: 16 hot pages are rewritten every step; a full check of the table every 10 steps.
HOT = "table_kib=8192\nfill=random\nhot_pages=16\nperiod_ms=10\ncheck_every=10\n"
FILLED = re.compile(r"^kvstore filled (\d+) KiB")
CHECK = re.compile(r"^check step (\d+) digest ")
MIB = 1 << 20


def hot_kvstore(board):
    board.cr.start("kvstore", ram_quota=16 * MIB, config=HOT)
    board.run_until(lambda: any(FILLED.match(line) for line in board.log("kvstore")),
                    timeout=30)
    board.run(0.05)
    return board


def ram(checkpoint):
    return [ds for ds in checkpoint.manifest.dataspaces if ds.kind == pb.DATASPACE_RAM]


def full_checks(board):
    return [line for line in board.log("kvstore") if CHECK.match(line)]


# --- what an incremental lists ---------------------------------------------------------------

def test_an_incremental_manifest_lists_only_what_changed_and_restores_exactly(make_board):
    a = hot_kvstore(make_board("boardA"))
    full = a.cr.checkpoint("kvstore")
    a.run(0.1)
    incremental = a.cr.checkpoint("kvstore", since=full, freeze=True)
    whole = a.cr.checkpoint("kvstore")          # a full one of the same (frozen) state

    full_size, delta_size = full.manifest.ByteSize(), incremental.manifest.ByteSize()
    assert delta_size < 0.05 * full_size, (delta_size, full_size)
    assert all(not ds.changed and len(ds.pages) == ds.size // PAGE_SIZE for ds in ram(full))
    table = [ds for ds in ram(incremental) if ds.size == 256 * 1024]
    assert len(table) == 32 and all(ds.pages_from_parent and not ds.pages for ds in table)
    changed = sum(len(ds.changed) for ds in table)
    assert 16 <= changed <= 16 + 4, changed        # the hot pages (and what else ran)
    assert page_lists(full, incremental) == page_lists(whole)
    with pytest.raises(BrokenChain, match="needs the chain"):
        resolve_pages(incremental.manifest, None)

    from_chain, from_whole = make_board("boardB"), make_board("boardB")
    from_chain.cr.restore([incremental, full])
    from_whole.cr.restore(whole)
    assert restored_state(from_chain, "kvstore") == restored_state(from_whole, "kvstore")
    from_chain.run_until(lambda: len(full_checks(from_chain)) >= 2, timeout=30)
    assert not errors_in(from_chain, "kvstore")


def test_a_chain_of_delta_rounds_restores_round_by_round(make_board):
    """A live move's rounds: staged on the target as they are taken, the last one
    frozen; the component goes on from its last step with the reference digests."""
    a, b, reference = make_board("boardA"), make_board("boardB"), make_board("boardC")
    hot_kvstore(a)
    restorer = b.cr.restorer()
    chain = [a.cr.checkpoint("kvstore")]
    restorer.stage(chain[0])
    for round_ in range(5):
        a.run(0.03)
        chain.append(a.cr.checkpoint("kvstore", since=chain[-1], freeze=round_ == 4))
        restorer.stage(chain[-1])
        assert restorer.page_lists == page_lists(*chain)
        assert chain[-1].manifest.ByteSize() < 0.05 * chain[0].manifest.ByteSize()
    assert restorer.report.pages_written < len(chain[0].pages) + 5 * 40, \
        "a round rewrote pages that had not changed"
    last_on_a = max(steps(a))
    a.cr.kill("kvstore")
    child, _report = restorer.commit()
    b.cr.adopt(child)

    b.run_until(lambda: len(full_checks(b)) >= 2, timeout=30)
    moved = steps(b)
    assert min(moved) == last_on_a + 1
    assert not errors_in(b, "kvstore")
    hot_kvstore(reference)
    reference.run_until(lambda: max(steps(reference), default=0) >= max(moved), timeout=60)
    expected = steps(reference)
    for step, value in {**steps(a), **moved}.items():
        assert value == expected[step], f"step {step}: {value} != {expected[step]}"


def test_a_dataspace_new_since_the_parent_gets_a_whole_list(make_board):
    """kvstore's default workload grows its table by a new 256 KiB dataspace a step."""
    a, b = make_board("boardA"), make_board("boardB")
    a.cr.start("kvstore")
    a.run(0.5)
    full = a.cr.checkpoint("kvstore")
    a.run(0.35)
    incremental = a.cr.checkpoint("kvstore", since=full, freeze=True)
    before = {ds.ref.badge for ds in ram(full)}
    new = [ds for ds in ram(incremental) if ds.ref.badge not in before]
    old = [ds for ds in ram(incremental) if ds.ref.badge in before]
    assert len(new) >= 2, "the table did not grow"
    assert all(not ds.pages_from_parent and len(ds.pages) == ds.size // PAGE_SIZE for ds in new)
    assert any(ds.pages_from_parent for ds in old)
    last_on_a = max(steps(a))
    b.cr.restore([full, incremental])
    b.run(0.5)
    assert min(steps(b)) == last_on_a + 1 and not errors_in(b, "kvstore")


def test_a_badge_back_with_another_size_gets_a_whole_list(make_board):
    """The history remembers the parent's list per badge; one of another length
    (a dataspace freed and its badge given to a new one of another size) is no
    parent to a delta list. The history is edited here to stand for that reuse,
    which the board's badge allocator makes rare."""
    a = make_board("boardA")
    a.cr.start("counter")
    a.run(0.3)
    full = a.cr.checkpoint("counter")
    a.run(0.3)
    history = a.cr.children["counter"].history
    badge = max(history.page_digests, key=lambda b: len(history.page_digests[b]))
    history.page_digests[badge] = history.page_digests[badge] + [b""]
    incremental = a.cr.checkpoint("counter", since=full)
    (ds,) = [ds for ds in ram(incremental) if ds.ref.badge == badge]
    assert not ds.pages_from_parent and len(ds.pages) == ds.size // PAGE_SIZE


def test_delta_chains_survive_files(make_board, tmp_path):
    a, b = make_board("boardA"), make_board("boardB")
    a.cr.start("counter")
    a.run(0.3)
    chain = [a.cr.checkpoint("counter")]
    for _ in range(3):
        a.run(0.2)
        chain.append(a.cr.checkpoint("counter", since=chain[-1], freeze=len(chain) == 3))
    assert any(ds.pages_from_parent for ds in ram(chain[-1]))
    paths = []
    for i, checkpoint in enumerate(chain):
        paths.append(tmp_path / f"{i}.ckpt")
        paths[-1].write_bytes(checkpoint.to_bytes())
    packed = [PackedCheckpoint.from_bytes(p.read_bytes()) for p in reversed(paths)]
    ordered = verify_chain(packed)
    assert [c.manifest for c in ordered] == [c.manifest for c in chain]
    b.cr.restore([c.unpack() for c in ordered])
    b.run(0.3)
    assert not errors_in(b, "counter")


# --- delta lists that do not fit are refused ------------------------------------------------

def _delta(manifest):
    return next(ds for ds in manifest.dataspaces if ds.pages_from_parent)


def _whole(manifest):
    return next(ds for ds in manifest.dataspaces
                if ds.kind == pb.DATASPACE_RAM and not ds.pages_from_parent)


def _out_of_range(m):
    ds = _delta(m)
    ds.changed.add(index=ds.size // PAGE_SIZE)


def _twice(m):
    _delta(m).changed.extend([pb.PageUpdate(index=0), pb.PageUpdate(index=0)])


def _not_in_parent(m):
    m.dataspaces.add(ref=pb.ObjectRef(badge=0xFFFF), size=PAGE_SIZE, pages_from_parent=True)


def _other_size(m):
    _delta(m).size += PAGE_SIZE


def _short_digest(m):
    _delta(m).changed.add(index=0, digest=b"\x01" * 31)


def _changes_without_parent_list(m):
    _whole(m).changed.add(index=0)


def _both_lists(m):
    ds = _delta(m)
    ds.pages.extend([b""] * (ds.size // PAGE_SIZE))


def _whole_list_too_short(m):
    del _whole(m).pages[-1]


BAD_DELTAS = {
    "out of range": (_out_of_range, "outside its"),
    "duplicate index": (_twice, "changed twice"),
    "not in the parent": (_not_in_parent, "has no RAM dataspace 65535"),
    "size differs from the parent's": (_other_size, "parent's, which has"),
    "digest of 31 bytes": (_short_digest, "31 bytes"),
    "changes without pages_from_parent": (_changes_without_parent_list, "no parent's list"),
    "both lists": (_both_lists, "both a whole page list"),
    "whole list too short": (_whole_list_too_short, "lists"),
}


@pytest.fixture
def counter_chain(make_board):
    a = make_board("boardA")
    a.cr.start("counter")
    a.run(0.5)
    full = a.cr.checkpoint("counter")
    a.run(0.3)
    incremental = a.cr.checkpoint("counter", since=full, freeze=True)
    assert any(ds.pages_from_parent for ds in ram(incremental))
    assert any(not ds.pages_from_parent for ds in ram(incremental))
    return full, incremental


@pytest.mark.parametrize("case", BAD_DELTAS, ids=list(BAD_DELTAS))
def test_a_delta_that_does_not_fit_is_refused_with_the_board_unchanged(
        case, counter_chain, make_board):
    change, message = BAD_DELTAS[case]
    full, incremental = counter_chain
    bad = altered(incremental, change)
    error = refuse(make_board("boardB"), [full, bad], CheckpointCorrupt)
    assert message in str(error)


@pytest.mark.parametrize("case", BAD_DELTAS, ids=list(BAD_DELTAS))
def test_a_refused_delta_round_leaves_the_staged_child_as_it_was(
        case, counter_chain, make_board):
    change, message = BAD_DELTAS[case]
    full, incremental = counter_chain
    b = make_board("boardB")
    restorer = b.cr.restorer()
    restorer.stage(full)
    staged = board_state(b), dict(restorer.page_lists)
    with pytest.raises(CheckpointCorrupt, match=re.escape(message)):
        restorer.stage(altered(incremental, change))
    assert (board_state(b), restorer.page_lists) == staged
    restorer.stage(incremental)                  # the intact round still fits
    child, _report = restorer.commit()
    b.cr.adopt(child)
    b.run(0.3)
    assert not errors_in(b, "counter")


def test_a_full_checkpoint_with_a_delta_list_is_refused(counter_chain, make_board):
    full, _incremental = counter_chain

    def borrow(m):
        ds = _whole(m)
        del ds.pages[:]
        ds.pages_from_parent = True

    error = refuse(make_board("boardB"), altered(full, borrow), CheckpointCorrupt)
    assert "full checkpoint" in str(error)
    with pytest.raises(CheckpointCorrupt):
        PackedCheckpoint.from_bytes(altered(full, borrow).to_bytes())


def test_a_delta_naming_an_uncarried_page_is_a_broken_chain(counter_chain, make_board):
    full, incremental = counter_chain
    bad = altered(incremental, lambda m: _delta(m).changed.add(index=0, digest=b"\x07" * 32))
    refuse(make_board("boardB"), [full, bad], BrokenChain)
