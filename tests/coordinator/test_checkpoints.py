"""Checkpoints stored by the coordinator, and failover from the store."""

from __future__ import annotations

import pytest

from migrate import errors
from migrate.v1 import resources_pb2 as rpb

from .conftest import counts, wait_for


def test_checkpoints_chain_dedup_verify_and_failover(fleet):
    f = fleet(boards=("boardA", "boardB", "boardC"))
    client = f.client()
    client.start_component("counter", "boardA")
    wait_for(lambda: len(counts(l.text for l in client.stream_logs("counter"))) >= 2, 60,
             "counter counting")
    full = client.create_checkpoint("counter")
    assert not full.parent_id and full.pages > 0 and full.stored_bytes > 0
    wait_for(lambda: len(counts(l.text for l in client.stream_logs("counter"))) >= 4, 60,
             "more counts")
    inc = client.create_checkpoint("counter")
    assert inc.parent_id == full.id and inc.sequence == full.sequence + 1
    assert inc.pages < full.pages
    listed = client.list_checkpoints("counter")
    assert [c.id for c in listed] == [inc.id, full.id]
    verified = client.verify_checkpoint(inc.id)
    assert verified.ok and verified.chain_length == 2, verified.detail
    described = client.get_checkpoint(inc.id)
    assert described.manifest.component == "counter" and described.manifest.id == inc.id

    # The board dies; its component comes back on boardC from the store.
    last_seen = max(counts(l.text for l in client.stream_logs("counter")))
    f.boards["boardA"].kill()
    wait_for(lambda: next(b for b in client.list_boards() if b.name == "boardA").health
             != rpb.BOARD_HEALTH_SERVING, 30, "boardA down")
    restored = client.restore_checkpoint(inc.id, "boardC")
    assert restored.component.board == "boardC"
    assert restored.report.chain_length == 2
    after = wait_for(lambda: (c := counts(l.text for l in client.stream_logs("counter")))
                     and len(c) >= 2 and c, 60, "counter counting on boardC")
    # It continues from the checkpoint: not from zero, and not beyond what was seen.
    assert 1 < after[0] <= last_seen + 1
    assert after == list(range(after[0], after[0] + len(after)))
    comps = client.list_components()
    assert [(c.board, c.name) for c in comps.components if c.name == "counter"] == \
        [("boardC", "counter")]
    assert "boardA" in comps.unreachable_boards

    # Deleting the full checkpoint takes its dependant with it.
    deleted = client.delete_checkpoint(full.id)
    assert deleted.deleted == 2
    with pytest.raises(errors.NotFound):
        client.get_checkpoint(inc.id)


def test_restore_refused_while_the_component_still_runs(fleet):
    f = fleet()
    client = f.client()
    client.start_component("counter", "boardA")
    stored = client.create_checkpoint("counter")
    with pytest.raises(errors.PreconditionFailed) as refused:
        client.restore_checkpoint(stored.id, "boardB")
    assert refused.value.reason == "STILL_RUNNING"
    # Under another name it is a copy, and allowed.
    copy = client.restore_checkpoint(stored.id, "boardB", name="counter-copy")
    assert copy.component.name == "counter-copy" and copy.component.board == "boardB"
