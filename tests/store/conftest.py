"""Stores on real files in tmp_path, and checkpoints to put in them: synthetic ones
whose pages the test chooses, and real ones taken on an emulated board."""

from __future__ import annotations

import hashlib

import pytest

from genode_cr.checkpoint import FORMAT_VERSION, PAGE_SIZE, Checkpoint, PackedCheckpoint
from genode_cr.emu import Board, default_rom_dir
from genode_cr.v1 import checkpoint_pb2 as pb
from migrate.store import CheckpointStore, DiskPageStore, SqliteStore


def raw_page(n: int) -> bytes:
    """Page number n: distinct for each n, compressible like real memory."""
    return hashlib.sha256(n.to_bytes(8, "little")).digest() * (PAGE_SIZE // 32)


def digest_of(n: int) -> bytes:
    return hashlib.sha256(raw_page(n)).digest()


def synthetic(checkpoint_id: str, *, carries: list[int], refers: list[int] | None = None,
              parent: str = "", component: str = "counter", sequence: int = 0
              ) -> PackedCheckpoint:
    """A checkpoint whose manifest refers to pages ``refers`` (default: those it
    carries) and that carries the contents of ``carries``."""
    manifest = pb.Manifest(format_version=FORMAT_VERSION, board="boardA", arch="armv7",
                           component=component, id=checkpoint_id, parent_id=parent,
                           sequence=sequence, rom=pb.RomModule(name="counter"),
                           page_size=PAGE_SIZE)
    pages = refers if refers is not None else carries
    dataspace = manifest.dataspaces.add(size=PAGE_SIZE * (len(pages) + 1))
    dataspace.pages.extend([digest_of(n) for n in pages] + [b""])     # and a zero page
    return PackedCheckpoint.pack(Checkpoint(manifest, {digest_of(n): raw_page(n)
                                                       for n in carries}))


def counts(board: Board) -> list[int]:
    """The numbers the counter logged on a board."""
    return [int(text.split()[1]) for text in board.log("counter") if text.startswith("count ")]


def save(store: CheckpointStore, packed: PackedCheckpoint, board: str = "boardA"):
    return store.save(packed.manifest, packed.root_digest, list(packed.pages.values()),
                      board=board)


@pytest.fixture
def meta(tmp_path):
    store = SqliteStore(tmp_path / "state.sqlite")
    yield store
    store.close()


@pytest.fixture
def pages(tmp_path):
    return DiskPageStore(tmp_path)


@pytest.fixture
def store(meta, pages):
    return CheckpointStore(meta, pages)


@pytest.fixture(scope="session")
def rom_dir():
    directory = default_rom_dir()
    if not (directory / "counter").is_file():
        pytest.fail(f"component ROMs missing in {directory}: run `make roms` (make test does)")
    return directory


@pytest.fixture
def counter_board(rom_dir):
    """boardA running the counter for a little while."""
    board = Board("boardA", rom_dir=rom_dir)
    board.cr.start("counter")
    board.run(0.2)
    return board
