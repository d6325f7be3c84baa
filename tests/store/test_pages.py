"""The disk page store: content-addressed, compressed as the pages travel, atomic."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest
import zstandard

from genode_cr.checkpoint import encode_page
from genode_cr.v1 import checkpoint_pb2 as pb
from migrate.errors import DataLoss, RequestError
from migrate.store import DiskPageStore

from .conftest import digest_of, raw_page


def compressed(n: int) -> pb.Page:
    return encode_page(digest_of(n), raw_page(n), zstandard.ZstdCompressor(level=3))


def test_put_get_keeps_the_bytes_as_they_travelled(pages):
    page = compressed(1)
    stored = pages.put(page.digest, page.compression, page.data)
    assert stored == len(page.data) + 1             # the compression byte
    assert pages.get(page.digest) == (pb.COMPRESSION_ZSTD, page.data)
    assert pages.get_page(page.digest) == page
    assert pages.has(page.digest)
    assert pages.verify(page.digest)
    path = pages.root / "pages" / page.digest.hex()[:2] / page.digest.hex()[2:]
    assert path.read_bytes() == bytes([pb.COMPRESSION_ZSTD]) + page.data
    assert list((pages.root / "tmp").iterdir()) == []


def test_a_page_is_stored_once(pages):
    page = compressed(2)
    assert pages.put(page.digest, page.compression, page.data) > 0
    assert pages.put(page.digest, page.compression, page.data) == 0
    assert pages.size_on_disk() == len(page.data) + 1
    assert list(pages.digests()) == [page.digest]


def test_concurrent_puts_of_one_page_count_it_once(pages):
    page = compressed(3)
    results = []
    barrier = threading.Barrier(8)

    def put():
        barrier.wait()
        results.append(pages.put(page.digest, page.compression, page.data))

    threads = [threading.Thread(target=put) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0] * 7 + [len(page.data) + 1]
    assert pages.verify(page.digest)


def test_uncompressed_pages_verify_too(pages):
    digest = digest_of(4)
    pages.put(digest, pb.COMPRESSION_NONE, raw_page(4))
    assert pages.get(digest) == (pb.COMPRESSION_NONE, raw_page(4))
    assert pages.verify(digest)


def test_a_missing_page_is_data_loss(pages):
    digest = digest_of(5)
    assert not pages.has(digest)
    assert not pages.verify(digest)
    with pytest.raises(DataLoss, match="missing"):
        pages.get(digest)


def test_delete_frees_the_bytes(pages):
    page = compressed(6)
    size = pages.put(page.digest, page.compression, page.data)
    assert pages.delete(page.digest) == size
    assert pages.delete(page.digest) == 0
    assert not pages.has(page.digest)
    assert pages.size_on_disk() == 0


@pytest.mark.parametrize("damage", ["flip", "truncate", "swap", "empty", "compression"])
def test_a_damaged_page_file_fails_verification(pages, damage):
    page = compressed(7)
    pages.put(page.digest, page.compression, page.data)
    path = pages.root / "pages" / page.digest.hex()[:2] / page.digest.hex()[2:]
    blob = bytearray(path.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0x40
    elif damage == "truncate":
        del blob[-10:]
    elif damage == "swap":         # another page's intact content under this digest
        other = compressed(8)
        blob = bytearray(bytes([other.compression]) + other.data)
    elif damage == "empty":
        blob = bytearray()
    elif damage == "compression":
        blob[0] = 9
    path.write_bytes(bytes(blob))
    assert pages.has(page.digest)
    assert not pages.verify(page.digest)


def test_bad_digests_are_refused(pages):
    for digest in (b"", b"\x01" * 31, hashlib.sha1(b"x").digest(), "ab" * 32):
        with pytest.raises(RequestError):
            pages.put(digest, 1, b"data")
        with pytest.raises(RequestError):
            pages.get(digest)
    with pytest.raises(RequestError):
        pages.put(digest_of(1), 300, b"data")


def test_reopening_sees_the_pages_and_clears_only_stale_temp_files(tmp_path):
    first = DiskPageStore(tmp_path)
    page = compressed(9)
    first.put(page.digest, page.compression, page.data)
    stale = tmp_path / "tmp" / "page-1-dead"
    stale.write_bytes(b"half a page")
    os.utime(stale, (1, 1))
    fresh = tmp_path / "tmp" / "page-2-live"
    fresh.write_bytes(b"being written")
    second = DiskPageStore(tmp_path)
    assert second.get(page.digest) == (page.compression, page.data)
    assert not stale.exists()
    assert fresh.exists()
