"""`verify` and `inspect`: checkpoint files only, no board."""

from __future__ import annotations

import json
import struct

import pytest

from genode_cr.checkpoint import Checkpoint
from genode_cr.cli import run
from genode_cr.emu import Board

from .conftest import failed, ok


@pytest.fixture(scope="module")
def files(tmp_path_factory, rom_dir):
    """A full checkpoint of the counter and two incrementals, written by Checkpoint.to_bytes."""
    board = Board("boardA", rom_dir=rom_dir)
    board.cr.start("counter")
    board.run(0.5)
    full = board.cr.checkpoint("counter")
    board.run(0.5)
    inc1 = board.cr.checkpoint("counter", since=full)
    board.run(0.5)
    inc2 = board.cr.checkpoint("counter", since=inc1, freeze=True)
    directory = tmp_path_factory.mktemp("checkpoints")
    out = {}
    for name, checkpoint in (("full", full), ("inc1", inc1), ("inc2", inc2)):
        out[name] = directory / f"{name}.ckpt"
        out[name].write_bytes(checkpoint.to_bytes())
    out["checkpoints"] = {"full": full, "inc1": inc1, "inc2": inc2}
    return out


def damaged(tmp_path, source, name: str, change) -> str:
    data = bytearray(source.read_bytes())
    path = tmp_path / name
    path.write_bytes(bytes(change(data)))
    return str(path)


def flip(offset: int):
    def change(data: bytearray) -> bytearray:
        # Bit 0: protobuf ignores bits 4..6 of the last byte of a 32-bit varint,
        # so flipping 0x10 there would leave the very same checkpoint.
        data[offset % len(data)] ^= 0x01
        return data
    return change


def manifest_span(data: bytes) -> tuple[int, int]:
    (length,) = struct.unpack_from("<I", data, 8)
    return 12, 12 + length


def test_inspect_and_verify_a_good_file(files, cli):
    full = files["checkpoints"]["full"]
    ok(cli("verify", files["full"]))
    report = json.loads(ok(cli("-O", "json", "inspect", files["full"])).stdout)["checkpoint"]
    for key in ("component", "board", "arch", "id", "parent_id", "sequence", "frozen", "rom",
                "cap_map", "pd", "region_maps", "dataspaces", "threads", "signal_sources",
                "signal_contexts", "native_caps", "sessions", "timers", "sizes", "root_digest"):
        assert key in report, key
    assert (report["component"], report["board"], report["arch"]) == ("counter", "boardA", "arm32")
    assert report["id"] == full.id and report["parent_id"] == "" and report["full"]
    assert report["cap_map"]["addr"] == full.manifest.cap_map_addr != 0
    assert {"ram_quota", "ram_used", "cap_quota", "cap_used"} <= report["pd"].keys()
    main_thread = next(t for t in report["threads"] if t["main"])
    assert main_thread["name"] == "counter" and main_thread["ip"] and main_thread["sp"]
    assert main_thread["blocking"] in {"none", "irq_receive", "reply_wait", "call"}
    assert [t["armed"] for t in report["timers"]] == [True]
    assert report["timers"][0]["elapsed_us"] > 0
    ram = [d for d in report["dataspaces"] if d["kind"] == "ram"]
    carried = sum(d["carried_pages"] for d in ram)
    assert carried == len(full.pages) == report["sizes"]["pages_carried"]
    assert all(d["carried_pages"] <= d["nonzero_pages"] <= d["pages"] for d in ram)
    attachments = {a["ds_badge"] for rm in report["region_maps"] for a in rm["attachments"]}
    assert {d["badge"] for d in report["dataspaces"]} <= attachments
    assert report["sizes"]["file"] == files["full"].stat().st_size

    text = ok(cli("inspect", files["full"])).stdout
    for word in ("counter", full.id, "threads", "dataspaces", "region maps", "timers",
                 "signal sources", "sessions", "root digest"):
        assert word in text, word


def test_inspect_an_incremental_counts_only_the_pages_it_carries(files, cli_here):
    inc = files["checkpoints"]["inc1"]
    result = ok(cli_here("-O", "json", "inspect", files["inc1"]))
    report = json.loads(result.stdout)["checkpoint"]
    assert report["parent_id"] == files["checkpoints"]["full"].id and not report["full"]
    assert report["sequence"] == inc.manifest.sequence == 1
    carried = sum(d["carried_pages"] for d in report["dataspaces"])
    assert carried == len(inc.pages) < len(files["checkpoints"]["full"].pages)
    # A delta list tells what changed since the parent; how many pages are non-zero takes the chain.
    assert all((d["nonzero_pages"] is None) == d["pages_from_parent"] for d in report["dataspaces"])


def test_verify_a_chain_given_in_any_order(files, cli_here):
    c = files["checkpoints"]
    result = json.loads(ok(cli_here("-O", "json", "verify", files["inc2"], files["full"],
                               files["inc1"])).stdout)
    assert result["chain"] == [c["full"].id, c["inc1"].id, c["inc2"].id]
    in_order = [str(files[n]) for n in ("full", "inc1", "inc2")]
    assert [v["file"] for v in result["verified"]] == in_order
    assert "chain ok" in ok(cli_here("verify", files["inc1"], files["full"])).stdout


@pytest.mark.parametrize("chain, why", [
    (("inc1", "inc2"), "no full checkpoint"),
    (("full", "inc2"), "do not follow"),
])
def test_verify_refuses_a_broken_chain(files, cli_here, chain, why):
    line = failed(cli_here("verify", *(files[n] for n in chain)), 4)
    assert why in line


def test_verify_refuses_a_chain_whose_pages_are_missing(files, tmp_path, cli_here):
    """inc2 keeps its parent link but loses the pages it carried: the chain cannot restore."""
    c = files["checkpoints"]
    stripped = Checkpoint(c["inc2"].manifest, {})
    path = tmp_path / "stripped.ckpt"
    path.write_bytes(stripped.to_bytes())
    if not c["inc2"].pages:
        pytest.skip("the second incremental carries no pages")
    line = failed(cli_here("verify", files["full"], files["inc1"], path), 4)
    assert "in no checkpoint of the chain" in line


@pytest.mark.parametrize("command", ["verify", "inspect"])
@pytest.mark.parametrize("cut", [0, 7, 100, -33, -1])
def test_truncated_files_are_refused(files, tmp_path, cli_here, command, cut):
    path = damaged(tmp_path, files["full"], "cut.ckpt", lambda d: d[:cut])
    line = failed(cli_here(command, path), 4)
    assert "cut.ckpt" in line


@pytest.mark.parametrize("command", ["verify", "inspect"])
@pytest.mark.parametrize("where", ["magic", "manifest", "page", "root digest"])
def test_tampered_files_are_refused(files, tmp_path, cli_here, command, where):
    data = files["full"].read_bytes()
    start, end = manifest_span(data)
    offset = {"magic": 3, "manifest": (start + end) // 2, "page": end + 40,
              "root digest": len(data) - 5}[where]
    path = damaged(tmp_path, files["full"], "tampered.ckpt", flip(offset))
    line = failed(cli_here(command, path), 4)
    assert "tampered.ckpt" in line


def test_json_error_of_a_bad_file(files, tmp_path, cli_here):
    path = damaged(tmp_path, files["full"], "tampered.ckpt", flip(-5))
    result = cli_here("-O", "json", "verify", path)
    failed(result, 4)
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "checkpoint_corrupt" and "root digest" in error["message"]


def test_refusals_in_a_process(files, tmp_path, cli):
    """The same refusals from the installed command: exit 4, one line, no traceback."""
    truncated = damaged(tmp_path, files["full"], "cut.ckpt", lambda d: d[:-40])
    tampered = damaged(tmp_path, files["full"], "tampered.ckpt", flip(-5))
    assert "truncated" in failed(cli("verify", truncated), 4)
    assert "root digest" in failed(cli("inspect", tampered), 4)
    failed(cli("restore", "-b", "socket://127.0.0.1:1", tampered), 4)


def test_no_byte_flip_gets_past_verify_unnoticed(files, tmp_path, capsys):
    """Every single-byte change is refused (exit 4), or decodes to the very same checkpoint."""
    original = files["checkpoints"]["full"]
    data = files["full"].read_bytes()
    path = tmp_path / "flipped.ckpt"
    codes = set()
    # Every byte, its top bit (length and header flags live there) and one more.
    for offset, bit in ((o, b) for o in range(len(data)) for b in {7, o % 7}):
        changed = bytearray(data)
        changed[offset] ^= 1 << bit
        path.write_bytes(changed)
        code = run(["verify", str(path)])
        err = capsys.readouterr().err
        codes.add(code)
        if code == 0:
            same = Checkpoint.from_bytes(bytes(changed))
            assert same.manifest == original.manifest and same.pages == original.pages, offset
        else:
            assert code == 4, f"bit {bit} of byte {offset} flipped: exit {code}: {err}"
    assert 4 in codes
