"""Signed checkpoints through the whole fleet: agents sign what they stream, the
coordinator checks and countersigns what it stores, and a restore is refused
before the target board changes when the store was altered behind its back."""

from __future__ import annotations

import sqlite3

import pytest

from genode_cr import checkpoint as cr_checkpoint
from genode_cr.v1 import checkpoint_pb2 as cpb
from migrate import errors
from migrate.security import COORDINATOR, Identity, Role
from migrate.security.signing import (CheckpointStatement, Signature, TrustedSigners)
from migrate.v1 import resources_pb2 as rpb

from .conftest import counts, wait_for
from .test_moves import finish

AGENT_A = Identity(Role.AGENT, "boardA")


def _signatures(stored: rpb.StoredCheckpoint) -> dict[str, Signature]:
    return {s.signer: Signature.parse(s.signer, s.algorithm, s.signature)
            for s in stored.signatures}


def _board_state(client, board: str):
    """What must not change when a restore is refused: the components and free RAM."""
    info = next(b for b in client.list_boards() if b.name == board)
    names = sorted((c.name, c.state) for c in client.list_components(board).components)
    return names, info.ram_free_bytes


def test_moves_and_restores_carry_verified_signatures(fleet, fleet_certs):
    f = fleet(boards=("boardA", "boardB", "boardC"))
    client = f.client()
    client.start_component("counter", "boardA")
    wait_for(lambda: len(counts(l.text for l in client.stream_logs("counter"))) >= 2, 60,
             "counter counting")

    # Stored: the source agent's signature and the coordinator's, both over this checkpoint.
    stored = client.create_checkpoint("counter")
    signatures = _signatures(stored)
    assert set(signatures) == {AGENT_A.uri, COORDINATOR.uri}
    trusted = TrustedSigners.load([fleet_certs.directory])
    described = client.get_checkpoint(stored.id)
    statement = CheckpointStatement.of(described.manifest, stored.root_digest)
    for signature in signatures.values():
        trusted.verify(statement, signature)
    other = CheckpointStatement("counter", "0" * 32, "", stored.root_digest)
    with pytest.raises(errors.CheckpointSignatureInvalid):
        trusted.verify(other, signatures[AGENT_A.uri])

    # A live move: the target's agent staged every round under boardA's agent signature.
    move = finish(client, client.create_move("counter", "boardB").id)
    assert move.phase == rpb.MOVE_PHASE_DONE, move.error
    assert f"signed by {AGENT_A.uri}" in f.agents["boardB"].log_text()

    # A restore from the store, after the component is gone: the coordinator's signature.
    client.kill_component("counter")
    restored = client.restore_checkpoint(stored.id, "boardC")
    assert restored.component.board == "boardC"
    assert f"signed by {COORDINATOR.uri}" in f.agents["boardC"].log_text()
    wait_for(lambda: len(counts(l.text for l in client.stream_logs("counter"))) >= 2, 60,
             "counter counting on boardC")


def _store(f) -> sqlite3.Connection:
    return sqlite3.connect(f.directory / "state" / "coordinator.sqlite", timeout=10,
                           isolation_level=None)


def test_tampered_stored_checkpoints_are_refused_before_the_target_changes(fleet):
    f = fleet(boards=("boardA", "boardB"))
    client = f.client()
    client.start_component("counter", "boardA")
    wait_for(lambda: len(counts(l.text for l in client.stream_logs("counter"))) >= 2, 60,
             "counter counting")
    stored = client.create_checkpoint("counter")
    client.kill_component("counter")
    before = _board_state(client, "boardB")
    db = _store(f)
    try:
        (manifest_bytes, root), = db.execute(
            "SELECT manifest, root_digest FROM checkpoints WHERE id = ?", (stored.id,))
        carried = [bytes(d) for (d,) in db.execute(
            "SELECT digest FROM carried_pages WHERE checkpoint_id = ? ORDER BY digest",
            (stored.id,))]

        # 1. One byte of one page file.
        name = carried[0].hex()
        page = f.directory / "state" / "pages" / name[:2] / name[2:]
        original_page = page.read_bytes()
        damaged = bytearray(original_page)
        damaged[len(damaged) // 2] ^= 0x01
        page.write_bytes(bytes(damaged))
        with pytest.raises(errors.DataLoss):
            client.restore_checkpoint(stored.id, "boardB")
        assert _board_state(client, "boardB") == before
        page.write_bytes(original_page)

        # 2. One byte of the stored manifest: the root digest no longer matches.
        altered = bytearray(manifest_bytes)
        altered[-1] ^= 0x01
        db.execute("UPDATE checkpoints SET manifest = ? WHERE id = ?",
                   (bytes(altered), stored.id))
        with pytest.raises(errors.MigrateError) as refused:
            client.restore_checkpoint(stored.id, "boardB")
        assert refused.value.status in ("DATA_LOSS", "FAILED_PRECONDITION")
        assert _board_state(client, "boardB") == before

        # 3. A manifest altered with its root digest recomputed: the digests agree, the
        #    signatures do not. Only the signature tells this from the real thing.
        manifest = cpb.Manifest()
        manifest.ParseFromString(bytes(manifest_bytes))
        manifest.taken_at_us += 1
        forged_root = cr_checkpoint.root_digest(manifest, carried)
        db.execute("UPDATE checkpoints SET manifest = ?, root_digest = ? WHERE id = ?",
                   (manifest.SerializeToString(deterministic=True), forged_root, stored.id))
        assert client.verify_checkpoint(stored.id).ok
        with pytest.raises(errors.CheckpointSignatureInvalid):
            client.restore_checkpoint(stored.id, "boardB")
        assert _board_state(client, "boardB") == before

        # 4. ... and with the coordinator's signature removed, the agent's is checked.
        db.execute("DELETE FROM checkpoint_signatures WHERE checkpoint_id = ? AND signer = ?",
                   (stored.id, COORDINATOR.uri))
        with pytest.raises(errors.CheckpointSignatureInvalid):
            client.restore_checkpoint(stored.id, "boardB")
        assert _board_state(client, "boardB") == before

        # Put back as it was, it restores.
        db.execute("UPDATE checkpoints SET manifest = ?, root_digest = ? WHERE id = ?",
                   (bytes(manifest_bytes), bytes(root), stored.id))
    finally:
        db.close()
    restored = client.restore_checkpoint(stored.id, "boardB")
    assert restored.component.board == "boardB"
