"""The child is created with an ELF dataspace, as Genode's Child is: a valid
one is loaded and its initial thread started (a fresh start), an invalid one
leaves the PD empty and threadless (the restore path). A restored child never
runs its entry or its start-up code."""

from __future__ import annotations

import io

import pytest
from elftools.elf.elffile import ELFFile
from unicorn import UC_HOOK_CODE

from genode_cr.emu import Board, abi
from genode_cr.emu.child import Child
from genode_cr.emu.cpu import ThreadState
from genode_cr.errors import RequestError

from .conftest import counts, errors_in

#: The entry, the runtime's start-up and the parts of counter's component_main
#: that run once, before its loop.
START_UP = ("_start", "_main", "signal_receiver_init", "timer_connect")


def symbols(rom: bytes, names) -> dict[str, int]:
    table = ELFFile(io.BytesIO(rom)).get_section_by_name(".symtab")
    return {name: table.get_symbol_by_name(name)[0]["st_value"] & ~1 for name in names}


def watch(child, addresses: dict[str, int]) -> list[str]:
    """Records each watched address the child's CPU executes."""
    hits: list[str] = []
    for name, addr in addresses.items():
        child.pd.uc.hook_add(UC_HOOK_CODE, lambda uc, a, size, name: hits.append(name),
                             name, begin=addr, end=addr)
    return hits


def test_a_valid_elf_is_loaded_and_its_thread_started(make_board):
    board = make_board("boardA")
    rom = board.roms["counter"]
    child = Child(board, "counter", rom, 1 << 20, 50, elf=board.rom_dataspace("counter"))
    try:
        [main] = child.threads
        assert main.state is ThreadState.READY
        assert main.regs[15] == ELFFile(io.BytesIO(rom.data)).header["e_entry"]
        assert child.pd.cap_space.lookup(abi.kcap(abi.CAP_MAIN_THREAD_INDEX)) is main
        assert child.parent_cap_addr
        assert child.pd.read(child.parent_cap_addr, 8)[4:6] == child.parent.badge.to_bytes(2, "little")
        entry = main.regs[15]
        assert child.pd.mapping_at(entry).attachment.executable
    finally:
        child.destroy()


def test_an_invalid_elf_dataspace_loads_nothing_and_starts_no_thread(make_board):
    board = make_board("boardA")
    threads, badges = len(board.kernel.threads), len(board.kernel.badges)
    child = Child(board, "counter", board.roms["counter"], 1 << 20, 50, elf=None)
    try:
        assert child.threads == [] and len(board.kernel.threads) == threads
        assert child.parent_cap_addr == 0 and child.pd.ram_used == 0
        assert child.pd._mappings == []            # not even the text: nothing was loaded
        assert [kcap for kcap, _ in child.pd.cap_space.items()] == [
            abi.kcap(abi.CAP_PARENT_INDEX)]
    finally:
        child.destroy()
    assert len(board.kernel.badges) == badges


def test_a_restored_child_never_runs_its_entry_or_start_up(make_board):
    a, b = make_board("boardA"), make_board("boardB")
    addresses = symbols(a.roms["counter"].data, START_UP)

    a.cr.start("counter")
    started = watch(a.cr.children["counter"], addresses)     # the control: a fresh start
    a.run(1.0)
    assert set(started) == set(START_UP)

    b.cr.restore(a.cr.checkpoint("counter", freeze=True))
    restored = watch(b.cr.children["counter"], addresses)
    b.run(1.5)
    assert restored == []
    assert counts(b)[0][0] == counts(a)[-1][0] + 1 and len(counts(b)) >= 6
    assert not errors_in(b, "counter")


def test_an_image_that_is_no_elf_is_refused_and_leaves_nothing(rom_dir):
    board = Board("boardA", roms={"junk": b"\x7fELF but not really" * 50,
                                  "counter": (rom_dir / "counter").read_bytes()})
    state = (board.free_ram, board.free_caps, len(board.kernel.badges), len(board.kernel.threads))
    with pytest.raises(RequestError, match="cannot start"):
        board.cr.start("junk")
    assert (board.free_ram, board.free_caps, len(board.kernel.badges),
            len(board.kernel.threads)) == state
    assert board.cr.components() == []
