"""The demo component moved from one board to another, full and as a chain."""

from genode_cr.checkpoint import Checkpoint

from .conftest import counts, errors_in


def assert_continues(source, target, name="counter"):
    before = [c for c, _, _ in counts(source, name)]
    after = [c for c, _, _ in counts(target, name)]
    assert before and after, (source.log(name), target.log(name))
    assert after[0] == before[-1] + 1, f"source ended at {before[-1]}, target began at {after[0]}"
    assert after == list(range(after[0], after[0] + len(after))), after
    assert not errors_in(target, name)


def test_counter_continues_on_another_board(make_board):
    a, b = make_board("boardA"), make_board("boardB")
    a.cr.start("counter")
    a.run(2.5)
    checkpoint = a.cr.checkpoint("counter", freeze=True)
    a.cr.kill("counter")

    report = b.cr.restore(Checkpoint.from_bytes(checkpoint.to_bytes()))
    b.run(2.0)

    assert_continues(a, b)
    assert len(counts(b)) >= 9
    assert report.parent_cap_rewritten
    assert report.cap_map_entries_translated > 0 and report.cap_map_entries_unknown == 0
    changed = [t for t in report.translations if t.old_badge != t.new_badge]
    assert changed, "two boards should hand out different badges"


def test_counter_through_full_and_three_incrementals(make_board):
    a, b = make_board("boardA"), make_board("boardB")
    a.cr.start("counter")
    a.run(1.0)
    chain = [a.cr.checkpoint("counter")]
    for _ in range(2):
        a.run(0.7)
        chain.append(a.cr.checkpoint("counter", since=chain[-1]))
    a.run(0.7)
    chain.append(a.cr.checkpoint("counter", since=chain[-1], freeze=True))
    assert [c.manifest.sequence for c in chain] == [0, 1, 2, 3]
    assert all(not c.is_full for c in chain[1:])
    assert sum(len(c.pages) for c in chain[1:]) < 3 * len(chain[0].pages), \
        "incrementals should carry only what was written"
    a.cr.kill("counter")

    b.cr.restore(reversed(chain))      # order does not matter, links do
    b.run(1.5)
    assert_continues(a, b)


def test_elapsed_time_stays_monotonic_across_the_move(make_board):
    a, b = make_board("boardA"), make_board("boardB")
    b.run(30.0)                        # the target has been up much longer
    a.cr.start("counter")
    a.run(1.3)
    checkpoint = a.cr.checkpoint("counter", freeze=True)
    b.cr.restore(checkpoint)
    b.run(1.0)
    elapsed = [e for _, e, _ in counts(a) + counts(b)]
    assert elapsed == sorted(elapsed) and len(set(elapsed)) == len(elapsed), elapsed
    assert counts(b)[0][1] < 2000, "elapsed_ms must continue from the checkpoint"
