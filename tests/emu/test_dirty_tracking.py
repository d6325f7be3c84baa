"""Dirty tracking must see every write. The kvstore checks its whole table
against a digest it keeps incrementally, so a store lost by the write-
protection path shows at once; frequent checkpoints re-protect its pages
while it computes (the Unicorn store-loss case)."""

import pytest

from genode_cr.v1 import checkpoint_pb2 as pb

from .conftest import errors_in, page_lists, steps


@pytest.mark.parametrize("unit_pages", [1, 8])
def test_frequent_checkpoints_lose_no_store(make_board, unit_pages):
    a = make_board("boardA", tracking_unit_pages=unit_pages)
    reference = make_board("boardC")
    a.cr.start("kvstore")
    reference.cr.start("kvstore")
    a.run(0.35)
    chain = [a.cr.checkpoint("kvstore")]
    for _ in range(40):
        a.run(0.037)          # lands in the middle of steps, not on their edges
        chain.append(a.cr.checkpoint("kvstore", since=chain[-1]))
    reference.run_until(lambda: max(steps(reference), default=0) >= max(steps(a)), timeout=30)
    assert not errors_in(a, "kvstore")
    ours, expected = steps(a), steps(reference)
    assert len(ours) >= 10
    assert all(ours[s] == expected[s] for s in ours)

    total_pages = sum(len(digests) for digests in page_lists(*chain).values())
    carried = sum(len(c.pages) for c in chain[1:]) / len(chain[1:])
    assert carried < total_pages / 4, "incrementals carried far more than was written"

    b = make_board("boardB")
    b.cr.restore(chain)
    b.run(0.5)
    assert not errors_in(b, "kvstore")
    moved = steps(b)
    assert moved and min(moved) == max(ours) + 1


def test_unwritten_memory_is_not_carried(make_board):
    a = make_board("boardA")
    a.cr.start("counter")
    a.run(0.5)
    full = a.cr.checkpoint("counter", freeze=True)
    again = a.cr.checkpoint("counter", since=full, freeze=True)
    assert full.pages and not again.pages
    assert page_lists(full, again) == page_lists(full)
    # Nothing changed, so every dataspace's list is its parent's, with no change.
    ram = [d for d in again.manifest.dataspaces if d.kind == pb.DATASPACE_RAM]
    assert ram and all(d.pages_from_parent and not d.changed for d in ram)
