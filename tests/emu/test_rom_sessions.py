"""ROM sessions for modules other than the child's binary: recorded with module
name and digest (and their dataspace, attached or only held), restored as that
module, and refused before anything is built when the target lacks the module
or has another version of it."""

from __future__ import annotations

import struct

import pytest

from genode_cr import errors
from genode_cr.emu import Board, abi
from genode_cr.emu.capture import read_cap_map
from genode_cr.emu.services import RomSession

from .conftest import counts, errors_in

SESSION_SLOT, HELD_SLOT = 0x3F0, 0x3F1     # far above what counter's runtime reserves


def receive(child, obj, index):
    """A capability the child asked for, as the kernel and the runtime's receive
    path leave it: the object in the slot, its badge recorded in the map."""
    kcap = abi.kcap(index)
    child.pd.cap_space.install(kcap, obj)
    entry = child.cap_map_addr + abi.CAP_MAP_HEADER_SIZE + index * abi.CAP_INDEX_SIZE
    child.pd.write(entry, struct.pack("<IBBH", 0, 1, 0, obj.badge))
    return kcap


@pytest.fixture
def source(make_board):
    """A counter that opened a ROM session for "ticker" through its parent and
    holds the module's dataspace as a capability only, never attached."""
    a = make_board("boardA")
    a.cr.start("counter")
    a.run(0.5)
    child = a.cr.children["counter"]
    session = child.parent.session(30, "ROM", 'label="ticker"')
    receive(child, session, SESSION_SLOT)
    dataspace, size = session.dataspace()
    receive(child, dataspace, HELD_SLOT)
    assert size == len(a.roms["ticker"].data)
    return a


def test_the_session_is_recorded_with_module_and_digest(source):
    checkpoint = source.cr.checkpoint("counter", freeze=True)
    m = checkpoint.manifest
    ticker = next(r for r in m.rom_sessions if r.session.id == 30)
    assert ticker.module == "ticker" and ticker.digest == source.roms["ticker"].digest
    binary = next(r for r in m.rom_sessions if r.session.id == 0)
    assert binary.module == "counter" and binary.digest == source.roms["counter"].digest
    held = source.rom_dataspace("ticker")
    assert ticker.dataspace.badge == held.badge
    assert ticker.dataspace.kcap == abi.kcap(HELD_SLOT)
    assert held.badge in {d.ref.badge for d in m.dataspaces}


def test_the_session_restores_as_its_module(source, make_board):
    target = make_board("boardB")
    target.cr.restore(source.cr.checkpoint("counter", freeze=True))
    child = target.cr.children["counter"]

    session = child.pd.cap_space.lookup(abi.kcap(SESSION_SLOT))
    assert isinstance(session, RomSession) and session.module.name == "ticker"
    assert child.sessions[30].session is session
    held = child.pd.cap_space.lookup(abi.kcap(HELD_SLOT))
    assert held is target.rom_dataspace("ticker") is session.dataspace()[0]
    assert held is not target.rom_dataspace("counter")
    entries = read_cap_map(child)
    assert entries[SESSION_SLOT][0] == session.badge
    assert entries[HELD_SLOT][0] == held.badge

    target.run(1.0)
    assert counts(target)[0][0] == counts(source)[-1][0] + 1
    assert not errors_in(target, "counter")


def test_an_attached_rom_of_another_module_shows_that_module(source, make_board):
    child = source.cr.children["counter"]
    dataspace = child.pd.cap_space.lookup(abi.kcap(HELD_SLOT))
    addr = child.pd.address_space().attach(dataspace)
    target = make_board("boardB")
    target.cr.restore(source.cr.checkpoint("counter", freeze=True))
    restored = target.cr.children["counter"]
    ticker = target.roms["ticker"].data
    assert restored.pd.read(addr, 256) == ticker[:256]
    assert restored.pd.read(addr, 256) != target.roms["counter"].data[:256]


def test_a_target_without_the_module_refuses(source, rom_dir):
    target = Board("boardB", roms={"counter": (rom_dir / "counter").read_bytes()})
    _refused(target, source, errors.RomMissing, "ticker")


def test_a_target_with_another_version_refuses(source, rom_dir):
    other = bytearray((rom_dir / "ticker").read_bytes())
    other[-1] ^= 0xFF
    target = Board("boardB", roms={"counter": (rom_dir / "counter").read_bytes(),
                                   "ticker": bytes(other)})
    _refused(target, source, errors.RomMismatch, "ticker")


def _refused(target, source, error, module):
    checkpoint = source.cr.checkpoint("counter", freeze=True)
    state = (target.free_ram, target.free_caps, len(target.kernel.badges), target.cr.components())
    with pytest.raises(error, match=module):
        target.cr.restore(checkpoint)
    assert (target.free_ram, target.free_caps, len(target.kernel.badges),
            target.cr.components()) == state
    assert not target.cr.staged


def test_a_child_asking_for_a_missing_module_is_denied_and_the_board_runs_on(make_board):
    board = make_board("boardA")
    board.cr.start("counter")
    board.run(0.3)
    child = board.cr.children["counter"]
    service, args = abi.STACK_AREA_BASE, abi.STACK_AREA_BASE + 16   # the unused stack bottom
    child.pd.write(service, b"ROM\0")
    child.pd.write(args, b'label="no such module"\0')
    reply = child.parent.dispatch(child.pd, abi.PARENT_SESSION, [31, service, args, 0])
    assert reply.err == abi.E_SERVICE_DENIED
    board.run(0.5)
    assert not errors_in(board, "counter")
