"""A growing component moved live: pre-copy rounds while it runs, then a
frozen final round. Its digests depend on every page of its table, and the
component is deterministic, so a reference run on a third board tells what
each step's digest must be."""

import pytest

from .conftest import errors_in, page_lists, steps

MIB = 1 << 20
CHUNK = 256 * 1024   # kvstore.c grows its table by dataspaces of this size


@pytest.mark.slow
def test_kvstore_live_precopy_continues_without_a_gap(make_board):
    a, b, reference = make_board("boardA"), make_board("boardB"), make_board("boardC")
    a.cr.start("kvstore", ram_quota=16 * MIB)
    a.run_until(lambda: a.cr.info("kvstore").ram_used > 4 * MIB, timeout=30)

    chain = [a.cr.checkpoint("kvstore")]
    for _ in range(4):                       # pre-copy rounds, component running
        a.run(0.25)
        chain.append(a.cr.checkpoint("kvstore", since=chain[-1]))
    a.run(0.15)
    chain.append(a.cr.checkpoint("kvstore", since=chain[-1], freeze=True))
    full_pages = len(chain[0].pages)
    for round_ in chain[1:]:
        assert len(round_.pages) < full_pages / 3, "a pre-copy round resent most of the memory"
    last_on_a = max(steps(a))
    a.cr.kill("kvstore")

    b.cr.restore(chain)
    b.run(1.5)
    moved = steps(b)
    assert moved and min(moved) == last_on_a + 1, (last_on_a, sorted(moved)[:3])
    assert not errors_in(b, "kvstore")

    reference.cr.start("kvstore", ram_quota=16 * MIB)
    reference.run_until(lambda: max(steps(reference), default=0) >= max(moved), timeout=60)
    expected = steps(reference)
    for step, value in {**steps(a), **moved}.items():
        assert value == expected[step], f"step {step}: {value} != {expected[step]}"
    assert moved[max(moved)][0] > 4 * 1024


def test_stale_page_shows_in_the_digest(make_board):
    """The control: restoring with one page of the table left stale (as a
    lost write would) makes the kvstore's own consistency check fail."""
    a, b = make_board("boardA"), make_board("boardB")
    a.cr.start("kvstore")
    a.run(1.0)
    full = a.cr.checkpoint("kvstore")
    a.run(0.35)
    incremental = a.cr.checkpoint("kvstore", since=full, freeze=True)
    table_pages = {d for digests in page_lists(full).values() for d in digests if d}
    changed = [d for d in incremental.pages if d not in table_pages]
    assert changed
    stale = _older_version_of(full, incremental, changed)
    b.cr.restore([full, stale])
    b.run(1.0)
    assert any("corrupt" in line for line in errors_in(b, "kvstore")), b.log("kvstore")


def _older_version_of(full, incremental, changed):
    """The incremental with one changed table page listed as it was in the full
    checkpoint: that dataspace gets a whole page list, the others stay as taken."""
    from genode_cr.checkpoint import Checkpoint
    old, new = page_lists(full), page_lists(full, incremental)
    manifest = type(incremental.manifest)()
    manifest.CopyFrom(incremental.manifest)
    for ds in manifest.dataspaces:
        if ds.size != CHUNK or ds.ref.badge not in old:
            continue
        for i, digest in enumerate(new[ds.ref.badge]):
            before = old[ds.ref.badge][i]
            if digest in changed and before and before != digest:
                digests = list(new[ds.ref.badge])
                digests[i] = before
                ds.ClearField("changed")
                ds.pages_from_parent = False
                ds.pages[:] = digests
                return Checkpoint(manifest, dict(incremental.pages))
    raise AssertionError("no page changed in place")
