"""The store and delta manifests: an incremental whose page lists are changes to
its parent's is saved only if they fit the stored parent, verified by resolving
the chain, and restores from the store like any other chain."""

from __future__ import annotations

import time

import pytest

from genode_cr.checkpoint import (FORMAT_VERSION, PAGE_SIZE, Checkpoint, PackedCheckpoint,
                                  resolve_page_lists, root_digest)
from genode_cr.emu import Board
from genode_cr.v1 import checkpoint_pb2 as pb
from migrate.errors import DataLoss, RequestError
from migrate.store import open_embedded
from migrate.store.base import CheckpointMeta

from .conftest import digest_of, raw_page, save, synthetic


def delta(checkpoint_id: str, *, parent: str, carries: list[int],
          changes: dict[int, int | None], pages: int = 4, badge: int = 0,
          sequence: int = 1) -> PackedCheckpoint:
    """An incremental whose one dataspace (``badge``, ``pages`` long) is its parent's
    with ``changes`` applied: page index -> page number, None for a zero page."""
    manifest = pb.Manifest(format_version=FORMAT_VERSION, board="boardA", arch="armv7",
                           component="counter", id=checkpoint_id, parent_id=parent,
                           sequence=sequence, rom=pb.RomModule(name="counter"),
                           page_size=PAGE_SIZE)
    manifest.dataspaces.add(
        ref=pb.ObjectRef(badge=badge), size=pages * PAGE_SIZE, pages_from_parent=True,
        changed=[pb.PageUpdate(index=i, digest=digest_of(n) if n is not None else b"")
                 for i, n in sorted(changes.items())])
    return PackedCheckpoint.pack(Checkpoint(manifest, {digest_of(n): raw_page(n)
                                                       for n in carries}))


@pytest.fixture
def full(store):
    """f1: one dataspace of 4 pages, [1, 2, 3, zero]."""
    save(store, synthetic("f1", carries=[1, 2, 3]))
    return store


def test_a_delta_chain_is_saved_verified_and_loaded(full):
    store = full
    d1 = delta("d1", parent="f1", carries=[4, 5], changes={1: 4, 3: 5})
    d2 = delta("d2", parent="d1", carries=[], changes={0: None, 1: 2}, sequence=2)
    assert save(store, d1).pages == 2
    assert save(store, d2).pages == 0       # page 2 is f1's
    result = store.verify("d2")
    assert (result.ok, result.chain_length, result.pages_checked) == (True, 3, 5), result.detail

    chain = []
    for meta in store.chain("d2"):
        manifest, root, pages = store.load(meta.id)
        chain.append(PackedCheckpoint(manifest, {p.digest: p for p in pages}, root))
    assert chain[2].manifest == d2.manifest
    assert resolve_page_lists(chain)[2] == {0: [b"", digest_of(2), digest_of(3), digest_of(5)]}


@pytest.mark.parametrize("bad, why", [
    (dict(badge=7, changes={0: 4}), "has no RAM dataspace 7"),
    (dict(pages=5, changes={0: 4}), "parent's, which has 4"),
    (dict(changes={4: 4}), "outside its 4 pages"),
], ids=["not in the parent", "another size", "out of range"])
def test_a_delta_that_does_not_fit_its_stored_parent_is_refused(full, bad, why):
    store = full
    with pytest.raises(DataLoss, match=why):
        save(store, delta("d1", parent="f1", carries=[4], **bad))
    assert [m.id for m in store.meta.list_checkpoints()] == ["f1"]
    assert not store.pages.has(digest_of(4))


def test_a_duplicate_change_is_refused(full):
    twice = delta("d1", parent="f1", carries=[4], changes={1: 4})
    manifest = pb.Manifest()
    manifest.CopyFrom(twice.manifest)
    manifest.dataspaces[0].changed.add(index=1)
    with pytest.raises(DataLoss, match="changed twice"):
        full.save(manifest, root_digest(manifest, twice.pages), twice.pages.values(),
                  board="boardA")
    assert full.meta.get_checkpoint("d1") is None


def test_a_delta_naming_a_page_no_checkpoint_carries_is_a_broken_chain(full):
    with pytest.raises(RequestError, match="carried by no checkpoint") as refused:
        save(full, delta("d1", parent="f1", carries=[], changes={2: 9}))
    assert refused.value.reason == "BROKEN_CHAIN"


def test_verify_resolves_the_chain(full):
    """A stored delta that its parent cannot resolve (as a store written by a build
    that did not check might hold) fails verification, though its root is intact."""
    store = full
    stray = delta("d1", parent="f1", carries=[], changes={0: None}, badge=7)
    store.meta.put_checkpoint(
        CheckpointMeta(id="d1", component="counter", board="boardA", parent_id="f1",
                       sequence=1, created=time.time(), pages=0, page_bytes=0,
                       stored_bytes=0, root_digest=stray.root_digest, rom="counter",
                       frozen=False),
        stray.manifest.SerializeToString(deterministic=True), [])
    result = store.verify("d1")
    assert not result.ok and "no RAM dataspace 7" in result.detail, result.detail
    assert store.verify("f1").ok


def test_a_real_delta_chain_restores_from_the_store(tmp_path, rom_dir):
    a, b = Board("boardA", rom_dir=rom_dir), Board("boardB", rom_dir=rom_dir)
    a.cr.start("kvstore", config="table_kib=2048\nfill=random\nhot_pages=8\nperiod_ms=10\n")
    a.run(0.2)
    chain = [PackedCheckpoint.pack(a.cr.checkpoint("kvstore"))]
    for round_ in range(3):
        a.run(0.05)
        chain.append(PackedCheckpoint.pack(
            a.cr.checkpoint("kvstore", since=chain[-1].id, freeze=round_ == 2)))
    assert all(ds.pages_from_parent for c in chain[1:] for ds in c.manifest.dataspaces
               if ds.size == 256 * 1024)
    last = max(int(line.split()[1]) for line in a.log("kvstore") if line.startswith("step "))
    a.cr.kill("kvstore")

    store = open_embedded(tmp_path / "state")
    for packed in chain:
        save(store, packed)
    result = store.verify(chain[-1].id)
    assert result.ok and result.chain_length == 4, result.detail
    store.close()

    store = open_embedded(tmp_path / "state")
    loaded = []
    for meta in store.chain(chain[-1].id):
        manifest, root, pages = store.load(meta.id)
        loaded.append(PackedCheckpoint(manifest, {p.digest: p for p in pages}, root).unpack())
    store.close()
    b.cr.restore(loaded)
    b.run(0.3)
    moved = [int(line.split()[1]) for line in b.log("kvstore") if line.startswith("step ")]
    assert moved and moved[0] == last + 1
    assert not [line for line in b.log("kvstore") if "corrupt" in line or "[core]" in line]
