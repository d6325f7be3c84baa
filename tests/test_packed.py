"""Checkpoint pages pass through compressed and untouched, from the source board
to the target board, through the agent and through files; only the target
board decompresses them, and it refuses a page that does not match."""

from __future__ import annotations

import hashlib
import struct
import threading
import time

import pytest
import zstandard

from genode_cr import errors, wire
from genode_cr.checkpoint import (MAX_PAGE_DATA, PAGE_SIZE, ZSTD_LEVEL, Checkpoint,
                                  PackedCheckpoint, order_chain, resolve_page_lists,
                                  resolve_pages, verify_chain)
from genode_cr.cli import run
from genode_cr.client import BoardClient
from genode_cr.emu import Board, default_rom_dir
from genode_cr.server import BoardServer
from genode_cr.v1 import board_pb2 as bpb
from genode_cr.v1 import checkpoint_pb2 as pb

#: How a board other than ours might compress: another level, a checksum in the
#: frame. Its pages must arrive as it made them, not as our zstd would remake them.
OTHER_BOARDS_ZSTD = zstandard.ZstdCompressor(level=1, write_checksum=True)


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.02)


# --- boards on TCP, their services recorded -------------------------------------------------

class RecordedBoard:
    """A real board server on a thread. Its service is wrapped to record the pages it
    sends in checkpoint streams (re-encoded as OTHER_BOARDS_ZSTD would, before they
    leave) and the pages it receives in stage_pages requests."""

    def __init__(self, name: str):
        self.name = name
        self.sent: list[tuple[bytes, bytes]] = []
        self.staged: list[tuple[bytes, bytes]] = []
        self.server = BoardServer(Board(name, rom_dir=default_rom_dir()))
        service = self.server.service
        handle = service.handle

        def recording(request: bpb.Request):
            if request.WhichOneof("body") == "stage_pages":
                self.staged += [(p.digest, p.data) for p in request.stage_pages.chunk.pages]
            for response in handle(request):
                if response.WhichOneof("body") == "pages":
                    for page in response.pages.pages:
                        raw = zstandard.ZstdDecompressor().decompress(page.data)
                        page.data = OTHER_BOARDS_ZSTD.compress(raw)
                        self.sent.append((page.digest, page.data))
                yield response

        service.handle = recording
        ready = threading.Event()
        self.url = ""

        def on_ready(url: str) -> None:
            self.url = url
            ready.set()

        self.thread = threading.Thread(target=self.server.serve,
                                       args=("socket://127.0.0.1:0", on_ready), daemon=True)
        self.thread.start()
        assert ready.wait(10), f"board {name} did not start"

    def connect(self) -> BoardClient:
        return BoardClient.connect(self.url)

    def stop(self) -> None:
        self.server.stop_event.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), f"board {self.name} did not stop"


@pytest.fixture
def boards():
    started: list[RecordedBoard] = []

    def start(name: str) -> RecordedBoard:
        started.append(RecordedBoard(name))
        return started[-1]

    yield start
    for board in started:
        board.stop()


def counting(client: BoardClient) -> None:
    client.start("counter")
    wait_for(lambda: any(line.text.startswith("count ") for line in client.logs("counter")))


def level3(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(
        zstandard.ZstdDecompressor().decompress(data))


def test_pages_reach_the_target_board_in_the_bytes_the_source_board_sent(boards):
    a, b = boards("boardA"), boards("boardB")
    with a.connect() as source, b.connect() as target:
        counting(source)
        full = source.checkpoint_packed("counter")
        wait_for(lambda: len(source.logs("counter")) >= 3)
        final = source.checkpoint_packed("counter", since=full, freeze=True)
        source.kill("counter")
        report = target.restore([final, full])
        assert report.chain_length == 2
        assert [c.name for c in target.components()] == ["counter"]

    assert a.sent and b.staged == a.sent
    carried = [(d, p.data) for c in (full, final) for d, p in sorted(c.pages.items())]
    assert carried == a.sent
    # The test can fail: our own zstd would have made other bytes of these pages.
    assert all(level3(data) != data for _, data in a.sent)


def test_checkpoint_file_holds_the_bytes_the_board_sent_and_restore_sends_them(
        boards, tmp_path, capsys):
    a, b = boards("boardA"), boards("boardB")
    with a.connect() as source:
        counting(source)
    path = tmp_path / "counter.ckpt"
    assert run(["-b", a.url, "checkpoint", "counter", "-o", str(path), "--freeze"]) == 0
    stored = PackedCheckpoint.from_bytes(path.read_bytes())
    assert a.sent and [(d, p.data) for d, p in sorted(stored.pages.items())] == a.sent

    assert run(["-b", b.url, "restore", str(path)]) == 0, capsys.readouterr().err
    assert b.staged == a.sent
    with b.connect() as target:
        assert [c.name for c in target.components()] == ["counter"]


# --- checkpoints taken in this process ------------------------------------------------------

@pytest.fixture(scope="module")
def chain() -> list[Checkpoint]:
    board = Board("boardA", rom_dir=default_rom_dir())
    board.cr.start("counter")
    board.run(0.5)
    full = board.cr.checkpoint("counter")
    board.run(0.5)
    return [full, board.cr.checkpoint("counter", since=full, freeze=True)]


@pytest.fixture
def packed(chain) -> PackedCheckpoint:
    """A fresh copy each time, so a test may tamper with it."""
    return PackedCheckpoint.from_bytes(PackedCheckpoint.pack(chain[0]).to_bytes())


def replace_page(packed: PackedCheckpoint, data: bytes) -> bytes:
    """Puts ``data`` in place of one page's compressed bytes; returns that page's digest."""
    digest = sorted(packed.pages)[0]
    packed.pages[digest].data = data
    return digest


def test_the_file_format_is_the_one_checkpoint_wrote(chain):
    full = chain[0]
    packed = PackedCheckpoint.pack(full)
    assert packed.to_bytes() == full.to_bytes()
    assert packed.page_bytes == len(full.pages) * PAGE_SIZE
    assert 0 < packed.wire_bytes < packed.page_bytes
    assert Checkpoint.from_bytes(packed.to_bytes()) == full
    assert packed.unpack() == full


def test_a_file_round_trip_keeps_the_compressed_bytes(packed):
    foreign = {d: OTHER_BOARDS_ZSTD.compress(zstandard.ZstdDecompressor().decompress(p.data))
               for d, p in packed.pages.items()}
    for digest, data in foreign.items():
        packed.pages[digest].data = data
    packed.verify()
    data = packed.to_bytes()
    again = PackedCheckpoint.from_bytes(data)
    assert {d: p.data for d, p in again.pages.items()} == foreign
    assert again.to_bytes() == data
    assert (again.id, again.root_digest) == (packed.id, packed.root_digest)


def test_verify_root_needs_no_decompression_and_verify_checks_every_page(packed):
    other = OTHER_BOARDS_ZSTD.compress(b"\x01" * PAGE_SIZE)     # valid zstd, other content
    digest = replace_page(packed, other)
    packed.verify_root()                  # manifest and digest set are as they were
    with pytest.raises(errors.CheckpointCorrupt, match=digest.hex()[:16]):
        packed.verify()
    with pytest.raises(errors.CheckpointCorrupt, match=digest.hex()[:16]):
        packed.unpack()
    replace_page(packed, other[:-5])      # broken zstd
    with pytest.raises(errors.CheckpointCorrupt):
        packed.verify()


@pytest.mark.parametrize("change, why", [
    (lambda p: setattr(p, "data", bytes(MAX_PAGE_DATA + 1)), "more than any"),
    (lambda p: setattr(p, "digest", p.digest[:31]), "digest of 31 bytes"),
    (lambda p: setattr(p, "compression", 7), "unknown page compression"),
])
def test_pages_of_the_wrong_shape_are_refused_unread(packed, change, why):
    change(packed.pages[sorted(packed.pages)[0]])
    with pytest.raises(errors.CheckpointCorrupt, match=why):
        packed.verify_root()
    with pytest.raises(errors.CheckpointCorrupt, match=why):
        PackedCheckpoint.from_bytes(packed.to_bytes())


def test_truncated_and_padded_files_are_refused(packed):
    data = packed.to_bytes()
    (manifest_len,) = struct.unpack_from("<I", data, 8)
    for cut in (0, 7, 11, 12 + manifest_len // 2, 16 + manifest_len + 50, len(data) - 33,
                len(data) - 1):
        with pytest.raises(errors.CheckpointCorrupt, match="truncated|bad magic"):
            PackedCheckpoint.from_bytes(data[:cut])
    with pytest.raises(errors.CheckpointCorrupt, match="trailing"):
        PackedCheckpoint.from_bytes(data + b"\0")


def test_a_page_stored_twice_is_refused(packed):
    data = packed.to_bytes()
    (manifest_len,) = struct.unpack_from("<I", data, 8)
    count_at = 12 + manifest_len
    (count,) = struct.unpack_from("<I", data, count_at)
    (first_len,) = struct.unpack_from("<I", data, count_at + 4)
    first = data[count_at + 4:count_at + 8 + first_len]
    twice = (data[:count_at] + struct.pack("<I", count + 1) + first + data[count_at + 4:])
    with pytest.raises(errors.CheckpointCorrupt, match="stored twice"):
        PackedCheckpoint.from_bytes(twice)


def test_chains_of_packed_checkpoints(chain):
    full, final = (PackedCheckpoint.pack(c) for c in chain)
    assert order_chain([final, full]) == [full, final]
    assert verify_chain([final, full]) == [full, final]
    stripped = PackedCheckpoint(final.manifest, {}, b"")
    stripped.root_digest = stripped.compute_root_digest()
    if final.referenced_digests() - full.pages.keys():
        with pytest.raises(errors.BrokenChain, match="in no checkpoint"):
            verify_chain([full, stripped])


def test_a_delta_list_travels_in_a_file_and_resolves_only_with_its_parent(chain):
    full, final = (PackedCheckpoint.pack(c) for c in chain)
    again = PackedCheckpoint.from_bytes(final.to_bytes())
    assert again.manifest == final.manifest
    deltas = [ds for ds in again.manifest.dataspaces if ds.pages_from_parent]
    assert deltas and all(not ds.pages for ds in deltas)
    with pytest.raises(errors.BrokenChain, match="needs the chain"):
        resolve_pages(again.manifest, None)
    lists = resolve_page_lists([full, again])
    assert lists[0] == {ds.ref.badge: list(ds.pages) for ds in full.manifest.dataspaces
                        if ds.kind == pb.DATASPACE_RAM}
    assert {badge: len(d) for badge, d in lists[1].items()} == \
           {ds.ref.badge: ds.size // PAGE_SIZE for ds in again.manifest.dataspaces
            if ds.kind == pb.DATASPACE_RAM}


def _with(packed: PackedCheckpoint, change) -> PackedCheckpoint:
    manifest = pb.Manifest()
    manifest.CopyFrom(packed.manifest)
    change(manifest)
    changed = PackedCheckpoint(manifest, dict(packed.pages))
    changed.root_digest = changed.compute_root_digest()
    return changed


def test_a_malformed_delta_list_is_refused_as_the_file_is_read(chain):
    def out_of_range(manifest):
        ds = next(d for d in manifest.dataspaces if d.pages_from_parent)
        ds.changed.add(index=ds.size // PAGE_SIZE)

    bad = _with(PackedCheckpoint.pack(chain[1]), out_of_range)
    with pytest.raises(errors.CheckpointCorrupt, match="outside its"):
        PackedCheckpoint.from_bytes(bad.to_bytes())


def test_verify_chain_refuses_a_delta_its_parent_cannot_resolve(chain):
    """Well formed alone, so the file reads; only the chain shows that the parent
    has no such dataspace."""
    full, final = (PackedCheckpoint.pack(c) for c in chain)
    stray = _with(final, lambda m: m.dataspaces.add(ref=pb.ObjectRef(badge=0xFFFF),
                                                     size=PAGE_SIZE, pages_from_parent=True))
    PackedCheckpoint.from_bytes(stray.to_bytes())
    with pytest.raises(errors.CheckpointCorrupt, match="no RAM dataspace 65535"):
        verify_chain([full, stray])


# --- the assemblers -----------------------------------------------------------------------

def stream(packed: PackedCheckpoint, pages_per_chunk: int = 3):
    start, *chunks, end = wire.packed_messages(packed, pages_per_chunk)
    return start, chunks, end


def test_packed_assembler_keeps_pages_as_they_came(packed):
    start, chunks, end = stream(packed)
    assert start.page_count == len(packed.pages) and len(chunks) > 1
    assembler = wire.PackedAssembler(start)
    for chunk in chunks:
        assembler.add(chunk)
    again = assembler.finish(end)
    assert {d: p.data for d, p in again.pages.items()} == \
           {d: p.data for d, p in packed.pages.items()}
    assert assembler.wire_bytes == packed.wire_bytes
    assert again.root_digest == packed.root_digest


@pytest.mark.parametrize("assembler_class", [wire.PackedAssembler, wire.CheckpointAssembler])
def test_the_start_announces_the_root_and_the_end_must_repeat_it(packed, assembler_class):
    start, chunks, end = stream(packed)
    assert start.root_digest == end.root_digest == packed.root_digest
    assembler = assembler_class(start)
    for chunk in chunks:
        assembler.add(chunk)
    other = bytes(b ^ 0xFF for b in end.root_digest)
    with pytest.raises(errors.CheckpointCorrupt, match="another root digest than its start"):
        assembler.finish(bpb.CheckpointEnd(root_digest=other))


@pytest.mark.parametrize("assembler_class", [wire.PackedAssembler, wire.CheckpointAssembler])
def test_assemblers_bound_what_they_accept(packed, assembler_class):
    start, chunks, end = stream(packed)
    first = chunks[0].pages[0]

    repeated = assembler_class(start)
    with pytest.raises(errors.ProtocolError, match="sent twice"):
        repeated.add(bpb.PageChunk(pages=[first, first]))
    assert len(repeated.pages) == 1 and repeated.wire_bytes == len(first.data)

    huge = pb.Page(digest=first.digest, compression=pb.COMPRESSION_ZSTD,
                   data=bytes(MAX_PAGE_DATA + 1))
    with pytest.raises(errors.CheckpointCorrupt, match="more than any"):
        assembler_class(start).add(bpb.PageChunk(pages=[huge]))
    short = pb.Page(digest=b"\1" * 8, compression=pb.COMPRESSION_ZSTD, data=first.data)
    with pytest.raises(errors.CheckpointCorrupt, match="digest of 8 bytes"):
        assembler_class(start).add(bpb.PageChunk(pages=[short]))

    too_many = assembler_class(bpb.CheckpointStart(manifest=start.manifest, page_count=1))
    with pytest.raises(errors.ProtocolError, match="more pages than"):
        too_many.add(chunks[0])

    too_few = assembler_class(start)
    too_few.add(chunks[0])
    with pytest.raises(errors.CheckpointCorrupt, match="ended after"):
        too_few.finish(end)

    no_root = assembler_class(start)
    for chunk in chunks:
        no_root.add(chunk)
    with pytest.raises(errors.CheckpointCorrupt, match="root digest of 0 bytes"):
        no_root.finish(bpb.CheckpointEnd())


# --- the target board refuses what does not match ------------------------------------------

def broken_zstd(data: bytes) -> bytes:
    return data[:len(data) // 2]


def other_content(data: bytes) -> bytes:
    return OTHER_BOARDS_ZSTD.compress(hashlib.sha256(data).digest() * (PAGE_SIZE // 32))


def oversized(data: bytes) -> bytes:
    return data + bytes(MAX_PAGE_DATA)


@pytest.mark.parametrize("damage", [other_content, broken_zstd, oversized])
def test_the_target_board_refuses_a_damaged_page_and_stays_as_it_was(boards, packed, damage):
    b = boards("boardB")
    digest = sorted(packed.pages)[0]
    replace_page(packed, damage(packed.pages[digest].data))
    with b.connect() as target:
        free = target.hello().ram_free
        with pytest.raises(errors.CheckpointCorrupt):
            target.restore(packed)
        assert target.components() == []
        assert target.hello().ram_free == free
    assert (digest, packed.pages[digest].data) in b.staged    # it was sent as it was


def test_restore_of_a_damaged_file_is_refused_before_the_board_is_touched(
        boards, packed, tmp_path, capsys):
    b = boards("boardB")
    replace_page(packed, other_content(packed.pages[sorted(packed.pages)[0]].data))
    path = tmp_path / "damaged.ckpt"
    path.write_bytes(packed.to_bytes())
    assert run(["-b", b.url, "restore", str(path)]) == 4
    assert "damaged.ckpt" in capsys.readouterr().err
    assert b.staged == []
    with b.connect() as target:
        assert target.components() == []
