"""The per-component "config" ROM and the configurable kvstore workload.

The CR component hands each child its own ROM module "config" (Genode's
init does so from the child's <config> node); the child asks its parent for
it like any ROM and attaches it. The config is part of the checkpoint, so a
restore elsewhere recreates the same module, session and dataspace. kvstore
reads its workload from it and re-reads it at every full check, logging a
hash of what it read (``check step S digest D config X``).
"""

from __future__ import annotations

import re
import threading
import time

import pytest
import zstandard

from genode_cr.checkpoint import ZSTD_LEVEL, Checkpoint, encode_page
from genode_cr.client import BoardClient
from genode_cr.emu import abi
from genode_cr.emu.child import CONFIG_ROM
from genode_cr.emu.cr import MAX_CONFIG_SIZE
from genode_cr.errors import BrokenChain, CheckpointCorrupt, RequestError
from genode_cr.link import BlockingLink, memory_pair
from genode_cr.server import BoardServer
from genode_cr.v1 import checkpoint_pb2 as pb

from .conftest import errors_in, page_lists, steps

CHUNK = 256 * 1024
PAGE_WORDS = abi.PAGE_SIZE // 4
SEED = 0x12345678
HOT = "table_kib=2048\nfill=random\nhot_pages=16\nperiod_ms=10\ncheck_every=10\n"

STARTED = re.compile(r"^kvstore started table_kib (\d+) fill (\w+) hot_pages (\d+) "
                     r"words_per_page (\d+) period_ms (\d+) check_every (\d+) "
                     r"config ([0-9a-f]{8})$")
FILLED = re.compile(r"^kvstore filled (\d+) KiB digest ([0-9a-f]{8})$")
CHECK = re.compile(r"^check step (\d+) digest ([0-9a-f]{8}) config ([0-9a-f]{8})$")


def fnv1a(data: bytes) -> str:
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


def xorshift32(seed: int, count: int) -> list[int]:
    out, x = [], seed
    for _ in range(count):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out.append(x)
    return out


def started(board, name="kvstore") -> dict:
    for line in board.log(name):
        m = STARTED.match(line)
        if m:
            keys = ("table_kib", "fill", "hot_pages", "words_per_page", "period_ms",
                    "check_every", "config")
            return {k: (v if k in ("fill", "config") else int(v)) for k, v in zip(keys, m.groups())}
    raise AssertionError(f"{name} did not start: {board.log(name)}")


def checks(board, name="kvstore") -> dict[int, tuple[str, str]]:
    return {int(m[1]): (m[2], m[3]) for m in map(CHECK.match, board.log(name)) if m}


def table_words(*chain: Checkpoint) -> list[bytes]:
    """The kvstore table's pages in the newest checkpoint of the chain, in table
    order: its chunks as attached in the RM session's region map."""
    lists = page_lists(*chain)
    (rm,) = chain[-1].manifest.rm_sessions
    (region_map,) = rm.region_maps
    pages = []
    for attachment in sorted(region_map.attachments, key=lambda a: a.addr):
        pages.extend(lists[attachment.ds_badge])
    return pages


# --- the config reaches the child, and only that child ------------------------------

def test_config_reaches_the_child(make_board):
    board = make_board("boardA")
    config = "# a workload\ntable_kib = 512\nhot_pages=3 ; words_per_page=2\nperiod_ms=20\n"
    board.cr.start("kvstore", config=config)
    board.run(0.5)
    assert started(board) == {"table_kib": 512, "fill": "zero", "hot_pages": 3,
                              "words_per_page": 2, "period_ms": 20,
                              "check_every": 1000 // 20, "config": fnv1a(config.encode())}
    child = board.cr.children["kvstore"]
    session = child.sessions[abi.SESSION_ID_CONFIG]
    assert (session.service, session.args) == ("ROM", 'label="config"')
    assert session.session.module.data == config.encode()
    assert not errors_in(board, "kvstore")


def test_config_format(make_board):
    """Hex, ';', comments, blanks, first setting wins; a bad value is logged
    and the default used."""
    board = make_board("boardA")
    board.cr.start("kvstore", config="table_kib = 0x200 ; hot_pages=2 # two\n"
                                      "hot_pages=9\nperiod_ms=fast\nwords_per_page=5000\n"
                                      "fill=random\r\n")
    board.run(0.5)
    settings = started(board)
    assert (settings["table_kib"], settings["hot_pages"], settings["period_ms"],
            settings["words_per_page"], settings["fill"]) == (512, 2, 100, 4, "random")
    log = board.log("kvstore")
    assert "config: period_ms is not an integer, using 100" in log
    assert any(line.startswith("kvstore: words_per_page=5000 is outside") for line in log)
    assert not errors_in(board, "kvstore")


def test_each_child_gets_its_own_config(make_board):
    board = make_board("boardA")
    board.add_rom("config", b"table_kib=256\n")     # core's ROM "config" is not the child's
    one, two = "table_kib=512\nhot_pages=1\n", "table_kib=1024\nhot_pages=2\n"
    board.cr.start("one", "kvstore", config=one)
    board.cr.start("two", "kvstore", config=two.encode())
    board.cr.start("none", "kvstore")
    board.run(0.3)
    assert (started(board, "one")["table_kib"], started(board, "one")["hot_pages"]) == (512, 1)
    assert (started(board, "two")["table_kib"], started(board, "two")["hot_pages"]) == (1024, 2)
    assert started(board, "one")["config"] == fnv1a(one.encode())
    assert started(board, "two")["config"] == fnv1a(two.encode())
    # Genode's init gives a child without a config an empty one: the defaults.
    assert started(board, "none") == {"table_kib": 8192, "fill": "zero", "hot_pages": 0,
                                      "words_per_page": 4, "period_ms": 100, "check_every": 1,
                                      "config": fnv1a(b"")}
    dataspaces = {name: board.cr.children[name].config_dataspace for name in ("one", "two", "none")}
    assert len({ds.badge for ds in dataspaces.values()}) == 3
    for name in ("one", "two", "none"):
        assert not errors_in(board, name)


def test_an_oversized_config_is_refused(make_board):
    board = make_board("boardA")
    with pytest.raises(RequestError, match="config"):
        board.cr.start("kvstore", config="x=1\n" * (MAX_CONFIG_SIZE // 4 + 1))
    assert board.cr.children == {} and board.free_ram == board.ram


def test_kill_frees_the_config_rom(make_board):
    board = make_board("boardA")
    badges = len(board.kernel.badges)
    board.cr.start("kvstore", config=HOT)
    board.run(0.2)
    board.cr.kill("kvstore")
    assert len(board.kernel.badges) == badges


# --- the workload -------------------------------------------------------------------------

def test_random_fill_is_incompressible_and_deterministic(make_board):
    board = make_board("boardA")
    board.cr.start("kvstore", config=HOT)
    board.run_until(lambda: any(FILLED.match(line) for line in board.log("kvstore")), timeout=5)
    board.run(0.2)
    full = board.cr.checkpoint("kvstore", freeze=True)

    words = 2048 * 1024 // 4
    stream = xorshift32(SEED, words)
    (filled,) = [m for m in map(FILLED.match, board.log("kvstore")) if m]
    digest = sum(v * (i + 1) for i, v in enumerate(stream)) & 0xFFFFFFFF
    assert (int(filled[1]), filled[2]) == (2048, f"{digest:08x}")

    table = table_words(full)
    assert len(table) == words // PAGE_WORDS
    for index in (16, 17, 100, len(table) - 1):          # pages 0..15 are hot
        expected = b"".join(v.to_bytes(4, "little")
                            for v in stream[index * PAGE_WORDS:(index + 1) * PAGE_WORDS])
        assert full.pages[table[index]] == expected, f"table page {index}"

    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    raw = sum(len(data) for data in full.pages.values())
    packed = sum(len(encode_page(d, data, compressor).data) for d, data in full.pages.items())
    assert raw >= 2048 * 1024
    assert packed >= 0.95 * raw, f"zstd shrank the checkpoint to {packed / raw:.1%}"


@pytest.mark.parametrize("unit_pages", [1, 4])
def test_incremental_carries_about_the_hot_pages(make_board, unit_pages):
    board = make_board("boardA", tracking_unit_pages=unit_pages)
    board.cr.start("kvstore", config=HOT)
    board.run(0.3)
    full = board.cr.checkpoint("kvstore")
    first = max(steps(board))
    board.run(0.3)
    incremental = board.cr.checkpoint("kvstore", since=full)
    assert max(steps(board)) - first >= 10, "many steps a second"
    table = set(table_words(full))
    carried_table = [d for d in incremental.pages if d not in table]
    assert 16 <= len(incremental.pages) <= 16 + 4, len(incremental.pages)
    assert len(carried_table) >= 16
    assert not errors_in(board, "kvstore")


def test_hot_stride_spreads_the_hot_pages(make_board):
    board = make_board("boardA", tracking_unit_pages=1)
    board.cr.start("kvstore", config="table_kib=2048; fill=random; hot_pages=4; hot_stride=64; "
                                      "period_ms=10")
    board.run(0.3)
    full = board.cr.checkpoint("kvstore")
    board.run(0.2)
    incremental = board.cr.checkpoint("kvstore", since=full)
    before, after = table_words(full), table_words(full, incremental)
    changed = [i for i, (old, new) in enumerate(zip(before, after)) if old != new]
    assert changed == [0, 64, 128, 192]


def test_a_long_run_stays_within_its_quota(make_board):
    """The default workload grows to its 8 MiB table and then keeps going;
    no attach ever fails (the table used to outgrow its region map)."""
    board = make_board("boardA")
    board.cr.start("kvstore")
    board.run_until(lambda: max(steps(board), default=0) >= 50, timeout=30)
    assert not errors_in(board, "kvstore")
    assert "kvstore: table full at 8192 KiB (table_kib)" in board.log("kvstore")
    assert steps(board)[50][0] == 8192
    info = board.cr.info("kvstore")
    assert info.ram_used <= info.ram_quota and info.state == "running"
    assert len(checks(board)) >= 50


def test_a_table_larger_than_the_quota_stops_at_the_quota(make_board):
    board = make_board("boardA")
    board.cr.start("kvstore", ram_quota=2 << 20, config="table_kib=8192\nfill=random\n")
    board.run(1.0)
    full = [line for line in board.log("kvstore") if line.startswith("kvstore: table full")]
    assert full and full[0].endswith("(err 3)"), board.log("kvstore")
    assert max(steps(board)) >= 5 and not errors_in(board, "kvstore")


# --- the config moves with the component ------------------------------------------------

def test_restored_kvstore_keeps_its_digest_and_config(make_board):
    a, b, reference = make_board("boardA"), make_board("boardB"), make_board("boardC")
    a.cr.start("kvstore", config=HOT)
    a.run(0.5)
    checkpoint = a.cr.checkpoint("kvstore", freeze=True)
    last = max(steps(a))
    a.cr.kill("kvstore")
    assert checkpoint.manifest.config == HOT.encode()

    report = b.cr.restore(checkpoint)
    b.run(0.5)
    moved = steps(b)
    assert min(moved) == last + 1 and max(moved) >= last + 30
    assert not errors_in(b, "kvstore")
    after = {s: c for s, c in checks(b).items() if s > last}
    assert len(after) >= 3 and {config for _, config in after.values()} == {fnv1a(HOT.encode())}

    # The child holds the target's own config ROM at its old slot, under a new badge.
    (rom,) = [r for r in checkpoint.manifest.rom_sessions if r.module == CONFIG_ROM]
    child = b.cr.children["kvstore"]
    assert child.config.data == HOT.encode()
    assert child.pd.cap_space.lookup(rom.dataspace.kcap) is child.config_dataspace
    translated = {t.old_badge: t for t in report.translations}
    assert translated[rom.dataspace.badge].new_badge == child.config_dataspace.badge
    assert translated[rom.session.ref.badge].kind == "rom"

    reference.cr.start("kvstore", config=HOT)
    reference.run_until(lambda: max(steps(reference), default=0) >= max(moved), timeout=10)
    expected = steps(reference)
    assert all(moved[s] == expected[s] for s in moved)


def test_config_survives_a_chain(make_board):
    a, b = make_board("boardA"), make_board("boardB")
    config = HOT + "seed=0xdeadbeef\n"
    a.cr.start("kvstore", config=config)
    a.run(0.3)
    chain = [a.cr.checkpoint("kvstore")]
    for seconds in (0.15, 0.2, 0.1):
        a.run(seconds)
        chain.append(a.cr.checkpoint("kvstore", since=chain[-1], freeze=seconds == 0.1))
    assert all(c.manifest.config == config.encode() for c in chain)
    last = max(steps(a))

    b.cr.restore(reversed(chain))
    b.run(0.5)
    assert min(steps(b)) == last + 1
    assert not errors_in(b, "kvstore")
    assert {c for s, (_, c) in checks(b).items() if s > last} == {fnv1a(config.encode())}
    assert b.cr.children["kvstore"].config.data == config.encode()


def test_a_config_never_opened_still_moves(make_board):
    """The counter never asks for its config; it travels all the same."""
    a, b = make_board("boardA"), make_board("boardB")
    a.cr.start("counter", config="unused=1\n")
    a.run(0.5)
    checkpoint = a.cr.checkpoint("counter", freeze=True)
    assert not [r for r in checkpoint.manifest.rom_sessions if r.module == CONFIG_ROM]
    b.cr.restore(checkpoint)
    assert b.cr.children["counter"].config.data == b"unused=1\n"


def test_the_component_notices_a_different_config(make_board):
    """The control: a (validly re-signed) checkpoint whose config was changed
    restores, and kvstore's re-read at its next check sees the difference."""
    a, b = make_board("boardA"), make_board("boardB")
    a.cr.start("kvstore", config=HOT)
    a.run(0.3)
    original = a.cr.checkpoint("kvstore", freeze=True)
    manifest = pb.Manifest()
    manifest.CopyFrom(original.manifest)
    manifest.config = HOT.replace("hot_pages=16", "hot_pages=15").encode()
    b.cr.restore(Checkpoint(manifest, dict(original.pages)))
    b.run(0.3)
    assert any("config ROM changed" in line for line in errors_in(b, "kvstore")), b.log("kvstore")


def test_the_root_digest_covers_the_config(make_board):
    a, b = make_board("boardA"), make_board("boardB")
    a.cr.start("kvstore", config=HOT)
    a.run(0.2)
    checkpoint = a.cr.checkpoint("kvstore", freeze=True)
    checkpoint.manifest.config = b"table_kib=1\n"        # root digest left as it was
    with pytest.raises(CheckpointCorrupt):
        b.cr.restore(checkpoint)
    assert b.cr.children == {} and b.free_ram == b.ram


def test_a_chain_that_disagrees_about_the_config_is_refused(make_board):
    a, b = make_board("boardA"), make_board("boardB")
    a.cr.start("kvstore", config=HOT)
    a.run(0.2)
    full = a.cr.checkpoint("kvstore")
    a.run(0.1)
    incremental = a.cr.checkpoint("kvstore", since=full, freeze=True)
    manifest = pb.Manifest()
    manifest.CopyFrom(incremental.manifest)
    manifest.config = b"table_kib=1\n"
    badges = len(b.kernel.badges)
    with pytest.raises(BrokenChain):
        b.cr.restore([full, Checkpoint(manifest, dict(incremental.pages))])
    assert b.cr.children == {} and b.free_ram == b.ram and len(b.kernel.badges) == badges


# --- over the board link ------------------------------------------------------------------

def test_start_with_config_over_the_board_link(rom_dir):
    from genode_cr.emu import Board

    client_port, board_port = memory_pair(seed="config")
    server = BoardServer(Board("boardA", rom_dir=rom_dir))
    link = BlockingLink(board_port)
    thread = threading.Thread(target=server.serve_link, args=(link,), daemon=True)
    thread.start()
    client = BoardClient(BlockingLink(client_port))
    try:
        client.start("kvstore", config="table_kib=256\nhot_pages=2\n")
        deadline = time.monotonic() + 10
        line = None
        while line is None and time.monotonic() < deadline:
            line = next((l.text for l in client.logs("kvstore") if STARTED.match(l.text)), None)
        assert line is not None, "kvstore never logged its settings"
        m = STARTED.match(line)
        assert (m[1], m[3], m[7]) == ("256", "2", fnv1a(b"table_kib=256\nhot_pages=2\n"))
    finally:
        server.stop_event.set()
        thread.join(10)
        client.close()
        link.close()
