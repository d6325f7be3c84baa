"""The embedded page store: one file per page content, under its digest.

    <root>/pages/ab/cdef...   (the digest in hex, fanned out by its first byte)
    <root>/tmp/               files being written

A page file is one byte of compression (a genode_cr.v1 Compression value)
followed by the page's data as it travelled. A page appears whole or not at
all: it is written to tmp/, fsynced, then linked to its name, which fails if
another writer got there first (so exactly one of them counts the bytes as
new); the directory is fsynced before ``put`` returns, so the metadata that
refers to the page can only ever be committed after the page is durable.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from genode_cr.checkpoint import PAGE_SIZE, decode_page
from genode_cr.errors import CheckpointCorrupt
from genode_cr.v1 import checkpoint_pb2 as pb

from ..errors import DataLoss, RequestError, Unavailable
from .base import PageStore

__all__ = ["DiskPageStore"]

DIGEST_SIZE = 32
#: Temporary files older than this are left over from a crash, not being written.
STALE_TEMP_AGE_S = 3600.0


class DiskPageStore(PageStore):
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._pages = self.root / "pages"
        self._tmp = self.root / "tmp"
        try:
            self._pages.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(exist_ok=True)
        except OSError as error:
            raise Unavailable(f"cannot open the page store {self.root}: {error}") from error
        self._remove_stale_temp_files()

    def _path(self, digest: bytes) -> Path:
        if not isinstance(digest, bytes) or len(digest) != DIGEST_SIZE:
            raise RequestError(f"a page digest is {DIGEST_SIZE} bytes (SHA-256), "
                               f"not {digest!r:.40}")
        name = digest.hex()
        return self._pages / name[:2] / name[2:]

    def put(self, digest: bytes, compression: int, data: bytes) -> int:
        path = self._path(digest)
        if not isinstance(compression, int) or not 0 <= compression <= 255:
            raise RequestError(f"page compression must be 0..255, not {compression!r}")
        if path.exists():
            return 0
        blob = bytes([compression]) + bytes(data)
        directory = path.parent
        if not directory.is_dir():
            directory.mkdir(exist_ok=True)
            _fsync_dir(self._pages)
        fd, tmp = _temp_file(self._tmp)
        try:
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(blob)
                    f.flush()
                    os.fsync(f.fileno())
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    return 0
                except OSError:
                    # a file system without hard links: rename, which may replace a
                    # concurrent writer's identical page
                    os.replace(tmp, path)
                _fsync_dir(directory)
            finally:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
        except OSError as error:
            raise Unavailable(f"page store {self.root}: cannot write page "
                              f"{digest.hex()[:16]}: {error}") from error
        return len(blob)

    def get(self, digest: bytes) -> tuple[int, bytes]:
        path = self._path(digest)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise DataLoss(f"page {digest.hex()[:16]} is missing from the page store "
                           f"{self.root}") from None
        except OSError as error:
            raise Unavailable(f"page store {self.root}: cannot read page "
                              f"{digest.hex()[:16]}: {error}") from error
        if not blob:
            raise DataLoss(f"page {digest.hex()[:16]} in the page store {self.root} is empty")
        return blob[0], blob[1:]

    def has(self, digest: bytes) -> bool:
        return self._path(digest).is_file()

    def delete(self, digest: bytes) -> int:
        path = self._path(digest)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        except OSError as error:
            raise Unavailable(f"page store {self.root}: cannot delete page "
                              f"{digest.hex()[:16]}: {error}") from error
        return size

    def verify(self, digest: bytes) -> bool:
        try:
            compression, data = self.get(digest)
            raw = decode_page(pb.Page(digest=digest, compression=compression, data=data))
        except (DataLoss, CheckpointCorrupt, ValueError):
            # ValueError: a compression byte that is no Compression value
            return False
        return len(raw) == PAGE_SIZE and hashlib.sha256(raw).digest() == digest

    def digests(self) -> Iterator[bytes]:
        for directory in sorted(self._pages.iterdir()):
            if not directory.is_dir() or len(directory.name) != 2:
                continue
            for entry in sorted(directory.iterdir()):
                try:
                    digest = bytes.fromhex(directory.name + entry.name)
                except ValueError:
                    continue
                if len(digest) == DIGEST_SIZE:
                    yield digest

    def size_on_disk(self) -> int:
        """The bytes of every stored page file (the file system rounds each up to a block)."""
        total = 0
        for directory in self._pages.iterdir():
            if directory.is_dir():
                total += sum(entry.stat().st_size for entry in directory.iterdir())
        return total

    def _remove_stale_temp_files(self) -> None:
        cutoff = time.time() - STALE_TEMP_AGE_S
        for entry in self._tmp.iterdir():
            try:
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"DiskPageStore({str(self.root)!r})"


def _temp_file(directory: Path) -> tuple[int, str]:
    name = str(directory / f"page-{os.getpid()}-{os.urandom(8).hex()}")
    return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), name


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
