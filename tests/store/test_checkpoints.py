"""Whole checkpoints in the store: saving (checked, deduplicated, crash-safe), chains,
loading, verifying, deleting, retention and garbage collection."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from genode_cr.checkpoint import PAGE_SIZE, PackedCheckpoint
from genode_cr.emu import Board
from genode_cr.v1 import checkpoint_pb2 as pb
from migrate.errors import AlreadyExists, DataLoss, NotFound, RequestError
from migrate.store import CheckpointStore, SqliteStore, open_embedded

from .conftest import counts, digest_of, save, synthetic


def page_file(store: CheckpointStore, digest: bytes):
    return store.pages.root / "pages" / digest.hex()[:2] / digest.hex()[2:]


def file_size(packed: PackedCheckpoint, *numbers: int) -> int:
    """What the page store takes for these pages of a synthetic checkpoint."""
    return sum(len(packed.pages[digest_of(n)].data) + 1 for n in numbers)


def nothing_stored(store: CheckpointStore) -> bool:
    return store.meta.list_checkpoints() == [] and list(store.pages.digests()) == []


# --- real checkpoints ---------------------------------------------------------------------

def test_a_real_chain_saved_loaded_and_restored_on_another_board(tmp_path, counter_board,
                                                                 rom_dir):
    a = counter_board
    full = PackedCheckpoint.pack(a.cr.checkpoint("counter"))
    a.run(0.1)
    delta = PackedCheckpoint.pack(a.cr.checkpoint("counter", since=full.id, freeze=True))
    a.cr.kill("counter")

    store = open_embedded(tmp_path / "state")
    saved_full = save(store, full)
    saved_delta = save(store, delta)
    assert (saved_full.pages, saved_full.page_bytes) == (len(full.pages),
                                                         len(full.pages) * PAGE_SIZE)
    assert saved_full.stored_bytes == sum(len(p.data) + 1 for p in full.pages.values())
    assert saved_delta.parent_id == full.id and saved_delta.sequence == 1
    assert saved_delta.frozen and saved_delta.rom == "counter" and saved_delta.board == "boardA"
    assert [m.id for m in store.chain(delta.id)] == [full.id, delta.id]
    assert store.meta.latest_checkpoint("counter").id == delta.id
    result = store.verify(delta.id)
    assert result.ok, result.detail
    assert (result.chain_length, result.pages_checked) == (2, len(full.pages) + len(delta.pages))
    store.close()

    # A coordinator restarted on the same state restores the chain elsewhere.
    store = open_embedded(tmp_path / "state")
    chain = []
    for meta in store.chain(delta.id):
        manifest, root, pages = store.load(meta.id)
        assert all(p.compression == pb.COMPRESSION_ZSTD for p in pages)
        chain.append(PackedCheckpoint(manifest, {p.digest: p for p in pages}, root).unpack())
    b = Board("boardB", rom_dir=rom_dir)
    b.cr.restore(chain)
    b.run(0.3)
    before, after = counts(a), counts(b)
    assert before and after and after[0] == before[-1] + 1, (before, after)
    assert after == list(range(after[0], after[0] + len(after)))
    assert not [line for line in b.log("counter") if "Error" in line or "[core]" in line]
    store.close()


def test_two_real_checkpoints_share_their_unchanged_pages(store, counter_board):
    first = PackedCheckpoint.pack(counter_board.cr.checkpoint("counter"))
    counter_board.run(0.1)
    second = PackedCheckpoint.pack(counter_board.cr.checkpoint("counter"))   # full again
    shared = first.pages.keys() & second.pages.keys()
    assert shared and shared != second.pages.keys()
    save(store, first)
    saved = save(store, second)
    new = second.pages.keys() - shared
    assert saved.stored_bytes == sum(len(second.pages[d].data) + 1 for d in new)
    assert saved.pages == len(second.pages)
    assert sorted(store.pages.digests()) == sorted(first.pages.keys() | second.pages.keys())


# --- saving -------------------------------------------------------------------------------

def test_shared_pages_are_stored_once(store):
    a = synthetic("a", carries=[1, 2, 3])
    b = synthetic("b", carries=[2, 3, 4])
    assert save(store, a).stored_bytes == file_size(a, 1, 2, 3)
    assert save(store, b).stored_bytes == file_size(b, 4)
    assert store.pages.size_on_disk() == file_size(a, 1, 2, 3) + file_size(b, 4)


def test_a_page_that_arrives_twice_is_carried_once(store):
    """A resumed transfer may send a page again."""
    packed = synthetic("a", carries=[1, 2])
    twice = [packed.pages[digest_of(1)], packed.pages[digest_of(2)], packed.pages[digest_of(1)]]
    saved = store.save(packed.manifest, packed.root_digest, twice, board="boardA")
    assert (saved.pages, saved.stored_bytes) == (2, file_size(packed, 1, 2))
    assert store.meta.carried_digests("a") == sorted([digest_of(1), digest_of(2)])


def test_a_repeated_save_is_idempotent_and_a_different_twin_refused(store):
    a = synthetic("a", carries=[1, 2])
    first = save(store, a)
    assert save(store, a) == first
    other = synthetic("a", carries=[1, 3])
    with pytest.raises(AlreadyExists):
        save(store, other)
    assert not store.pages.has(digest_of(3))
    assert store.verify("a").ok


def test_a_root_digest_mismatch_is_refused_with_nothing_stored(store):
    packed = synthetic("a", carries=[1, 2])
    with pytest.raises(DataLoss, match="root digest"):
        store.save(packed.manifest, b"\x00" * 32, packed.pages.values(), board="boardA")
    assert nothing_stored(store)
    # a manifest changed after the digest was taken
    packed.manifest.sequence = 7
    with pytest.raises(DataLoss, match="root digest"):
        save(store, packed)
    # a page left out on the way
    packed = synthetic("a", carries=[1, 2])
    with pytest.raises(DataLoss, match="root digest"):
        store.save(packed.manifest, packed.root_digest, [packed.pages[digest_of(1)]],
                   board="boardA")
    assert nothing_stored(store)


def test_a_refused_save_keeps_the_pages_other_checkpoints_carry(store):
    kept = synthetic("kept", carries=[1, 2])
    save(store, kept)
    bad = synthetic("bad", carries=[2, 3])
    with pytest.raises(DataLoss):
        store.save(bad.manifest, b"\x00" * 32, bad.pages.values(), board="boardA")
    assert sorted(store.pages.digests()) == sorted([digest_of(1), digest_of(2)])
    assert store.verify("kept").ok


def test_a_page_that_does_not_match_its_digest_is_refused(store):
    packed = synthetic("a", carries=[1, 2])
    page = packed.pages[digest_of(2)]
    swapped = pb.Page(digest=page.digest, compression=page.compression,
                      data=synthetic("x", carries=[9]).pages[digest_of(9)].data)
    with pytest.raises(DataLoss, match="does not match"):
        store.save(packed.manifest, packed.root_digest, [packed.pages[digest_of(1)], swapped],
                   board="boardA")
    garbage = pb.Page(digest=page.digest, compression=pb.COMPRESSION_ZSTD, data=b"\x28\xb5junk")
    with pytest.raises(DataLoss):
        store.save(packed.manifest, packed.root_digest, [garbage], board="boardA")
    short = pb.Page(digest=page.digest, compression=pb.COMPRESSION_NONE, data=b"\0" * 100)
    with pytest.raises(DataLoss):
        store.save(packed.manifest, packed.root_digest, [short], board="boardA")
    assert nothing_stored(store)


def test_an_incremental_needs_its_parent_and_a_whole_chain(store):
    orphan = synthetic("i1", carries=[3], refers=[1, 2, 3], parent="f1", sequence=1)
    with pytest.raises(RequestError, match="parent f1 is not stored"):
        save(store, orphan)
    assert nothing_stored(store)

    save(store, synthetic("f1", carries=[1, 2]))
    gap = synthetic("i1", carries=[3], refers=[1, 2, 3, 4], parent="f1", sequence=1)
    with pytest.raises(RequestError, match="carried by no checkpoint") as refused:
        save(store, gap)
    assert refused.value.reason == "BROKEN_CHAIN"
    assert not store.pages.has(digest_of(3))
    other = synthetic("k1", carries=[3], refers=[1, 2, 3], parent="f1", component="kvstore")
    with pytest.raises(RequestError, match="parent of counter"):
        save(store, other)

    save(store, orphan)
    assert [m.id for m in store.chain("i1")] == ["f1", "i1"]


def test_a_page_pinned_by_a_save_survives_a_concurrent_delete(store):
    """Dedup race: a save finds page 2 already stored (by "old") while "old" is
    deleted before the save's metadata lands; page 2 must stay."""
    old = synthetic("old", carries=[1, 2])
    save(store, old)
    new = synthetic("new", carries=[2, 3])
    deleted = []

    def arriving():
        yield new.pages[digest_of(2)]
        deleted.append(store.delete("old"))
        yield new.pages[digest_of(3)]

    assert store.save(new.manifest, new.root_digest, arriving(), board="boardA").stored_bytes \
        == file_size(new, 3)
    assert deleted == [(["old"], file_size(old, 1))]        # page 2 was pinned
    assert not store.pages.has(digest_of(1))
    assert store.verify("new").ok


def test_concurrent_saves_and_deletes_keep_every_stored_checkpoint_whole(store):
    errors = []

    def worker(w: int):
        try:
            for i in range(6):
                packed = synthetic(f"w{w}-{i}", carries=[1, 2, 10 * w + i])
                save(store, packed)
                if i % 2:
                    store.delete(f"w{w}-{i - 1}")
        except BaseException as error:    # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    remaining = store.meta.list_checkpoints()
    assert len(remaining) == 12
    for meta in remaining:
        assert store.verify(meta.id).ok
    assert store.collect_garbage() == (0, 0)


# --- verifying ------------------------------------------------------------------------------

@pytest.fixture
def chain3(store):
    save(store, synthetic("f1", carries=[1, 2, 3]))
    save(store, synthetic("i1", carries=[4], refers=[1, 2, 4], parent="f1", sequence=1))
    save(store, synthetic("i2", carries=[5], refers=[1, 4, 5], parent="i1", sequence=2))
    return store


def test_verify_checks_the_whole_chain(chain3):
    result = chain3.verify("i2")
    assert (result.ok, result.chain_length, result.pages_checked) == (True, 3, 5)
    with pytest.raises(NotFound):
        chain3.verify("nope")


def test_a_tampered_page_file_is_detected(chain3):
    path = page_file(chain3, digest_of(2))
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 1
    path.write_bytes(bytes(blob))
    result = chain3.verify("i2")
    assert not result.ok
    assert digest_of(2).hex()[:16] in result.detail and "f1" in result.detail
    assert chain3.verify("f1").ok is False


def test_a_missing_page_file_is_detected(chain3):
    page_file(chain3, digest_of(4)).unlink()
    result = chain3.verify("i2")
    assert not result.ok and "missing" in result.detail and "i1" in result.detail
    assert chain3.verify("f1").ok
    with pytest.raises(DataLoss):
        chain3.load("i1")


def test_a_tampered_manifest_is_detected(chain3):
    db = sqlite3.connect(chain3.meta.path)
    manifest = pb.Manifest.FromString(db.execute(
        "SELECT manifest FROM checkpoints WHERE id = 'i1'").fetchone()[0])
    manifest.sequence = 9
    db.execute("UPDATE checkpoints SET manifest = ? WHERE id = 'i1'",
               (manifest.SerializeToString(deterministic=True),))
    db.commit()
    db.close()
    result = chain3.verify("i2")
    assert not result.ok and "root digest" in result.detail and "i1" in result.detail


# --- deleting ---------------------------------------------------------------------------------

def test_delete_takes_the_dependants_and_frees_only_unshared_pages(store):
    full = synthetic("f1", carries=[1, 2])
    save(store, full)
    save(store, synthetic("i1", carries=[3], refers=[1, 3], parent="f1", sequence=1))
    i2 = synthetic("i2", carries=[4], refers=[1, 3, 4], parent="i1", sequence=2)
    save(store, i2)
    branch = synthetic("i2b", carries=[5, 2], refers=[5, 2], parent="i1", sequence=2)
    save(store, branch)
    save(store, synthetic("other", carries=[3]))

    deleted, freed = store.delete("i1")
    assert sorted(deleted) == ["i1", "i2", "i2b"]
    assert freed == file_size(i2, 4) + file_size(branch, 5)     # 3 is "other"'s, 2 is f1's
    assert [m.id for m in store.meta.list_checkpoints()] == ["other", "f1"]
    assert store.verify("f1").ok and store.verify("other").ok
    with pytest.raises(NotFound):
        store.delete("i1")


def test_retention_keeps_the_newest_and_what_they_need(store):
    save(store, synthetic("f1", carries=[1, 2]))
    save(store, synthetic("i1", carries=[3], refers=[1, 3], parent="f1", sequence=1))
    save(store, synthetic("i2", carries=[4], refers=[1, 3, 4], parent="i1", sequence=2))
    f2 = synthetic("f2", carries=[1, 5])
    save(store, f2)
    save(store, synthetic("i3", carries=[6], refers=[1, 5, 6], parent="f2", sequence=1))
    save(store, synthetic("k1", carries=[2], component="kvstore"))

    assert store.apply_retention("counter", keep=3) == ([], 0)      # i2 needs i1 and f1
    deleted, freed = store.apply_retention("counter", keep=2)
    assert sorted(deleted) == ["f1", "i1", "i2"]
    assert freed > 0 and not store.pages.has(digest_of(3)) and not store.pages.has(digest_of(4))
    assert store.pages.has(digest_of(1)) and store.pages.has(digest_of(2))   # f2's, k1's
    assert [m.id for m in store.meta.list_checkpoints()] == ["k1", "i3", "f2"]
    assert store.verify("i3").ok

    assert sorted(store.apply_retention("counter", keep=0)[0]) == ["f2", "i3"]
    assert [m.id for m in store.meta.list_checkpoints()] == ["k1"]
    with pytest.raises(RequestError):
        store.apply_retention("counter", keep=-1)


def test_garbage_collection_removes_pages_a_crash_left_behind(tmp_path):
    """A coordinator that died between a save's pages and its metadata."""
    store = open_embedded(tmp_path)
    kept = synthetic("kept", carries=[1, 2])
    save(store, kept)
    lost = synthetic("lost", carries=[2, 3, 4])
    for page in lost.pages.values():
        store.pages.put(page.digest, page.compression, page.data)
    store.close()

    store = CheckpointStore(SqliteStore(tmp_path / "state.sqlite"), store.pages)
    assert store.collect_garbage() == (2, file_size(lost, 3, 4))
    assert sorted(store.pages.digests()) == sorted([digest_of(1), digest_of(2)])
    assert store.verify("kept").ok
    assert store.collect_garbage() == (0, 0)
    store.close()
