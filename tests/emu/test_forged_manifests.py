"""Manifests that verify but are inconsistent: each is refused with
CheckpointCorrupt before the restore builds anything, so the target board is
left exactly as it was (its shared ROMs included) and keeps working.

Each forgery is re-signed as the format requires (a fresh root digest over
the changed manifest and the same pages), so it passes ``verify()``: only the
restore's own checks stand between it and the board."""

from __future__ import annotations

import pytest

from genode_cr.checkpoint import Checkpoint
from genode_cr.emu import abi
from genode_cr.emu.child import MAX_CONFIG_SIZE
from genode_cr.emu.manifest_check import MAX_ATTACHMENTS
from genode_cr.errors import CheckpointCorrupt
from genode_cr.v1 import checkpoint_pb2 as pb

from .conftest import counts, errors_in

PAGE = abi.PAGE_SIZE


@pytest.fixture(scope="module")
def original(rom_dir):
    from genode_cr.emu import Board
    board = Board("boardA", rom_dir=rom_dir)
    board.cr.start("counter")
    board.run(1.0)
    return board.cr.checkpoint("counter")


# --- finding the parts of a counter's manifest -------------------------------------------

def text(m):
    """The code segment: the binary's ROM dataspace, attached executable."""
    roms = {d.ref.badge for d in m.dataspaces if d.kind == pb.DATASPACE_ROM}
    return next(a for a in m.pd.address_space.attachments if a.ds_badge in roms)


def data(m):
    """The attachment that holds the capability map (.data)."""
    return next(a for a in m.pd.address_space.attachments
                if a.addr <= m.cap_map_addr < a.addr + a.size)


def ram(m, badge):
    return next(d for d in m.dataspaces if d.ref.badge == badge)


def stack(m):
    return m.pd.stack_area.attachments[0]


def thread(m):
    return m.cpu.threads[0]


def area(m, region_map):
    return next(a for a in m.pd.address_space.attachments
                if a.ds_badge == region_map.dataspace.badge)


def unused_badge(m):
    used = {r.badge for r in _refs(m)}
    return next(b for b in range(1, 1 << 16) if b not in used)


def _refs(message):
    """Every ObjectRef inside a message."""
    for field, value in message.ListFields():
        for inner in value if field.is_repeated else [value]:
            if isinstance(inner, pb.ObjectRef):
                yield inner
            elif hasattr(inner, "ListFields"):
                yield from _refs(inner)


# --- the forgeries ------------------------------------------------------------------------

def _set(obj, **fields):
    for name, value in fields.items():
        setattr(obj, name, value)


def _overlap(m):
    a = data(m)
    m.pd.address_space.attachments.add(ds_badge=a.ds_badge, addr=a.addr + PAGE, size=PAGE,
                                       writable=True)


def _many_attachments(m):
    a = stack(m)
    for i in range(MAX_ATTACHMENTS + 1):
        m.pd.stack_area.attachments.add(ds_badge=a.ds_badge, addr=(i + 8) * PAGE, size=PAGE,
                                        writable=True)


def _map_in_itself(m):
    m.pd.stack_area.attachments.add(ds_badge=m.pd.stack_area.dataspace.badge,
                                    addr=0x100000, size=abi.STACK_AREA_SIZE)


FORGERIES = {
    # The case: the restore's rewrite of the parent capability would land in
    # the board's shared ROM.
    "parent cap in the code segment": (
        lambda m: _set(m, parent_cap_addr=text(m).addr + 0x100), "raw parent capability"),
    "parent cap in an unmapped page": (
        lambda m: _set(m, parent_cap_addr=abi.STACK_AREA_BASE + 0x80000), "raw parent capability"),
    "cap map in the code segment": (
        lambda m: _set(m, cap_map_addr=text(m).addr), "capability map at"),
    "cap map beyond its segment": (
        lambda m: _set(m, cap_map_addr=data(m).addr + data(m).size - 64), "capability map at"),
    "cap map of a million entries": (
        lambda m: _set(m, cap_map_entries=1 << 20), "capability map of"),
    "cap map of no entries": (lambda m: _set(m, cap_map_entries=0), "capability map of"),
    "attachment beyond its region map": (
        lambda m: _set(stack(m), addr=abi.STACK_AREA_SIZE - PAGE), "beyond the map"),
    "attachment beyond its dataspace": (
        lambda m: _set(stack(m), offset=PAGE), "beyond its dataspace"),
    "attachment not page-aligned": (lambda m: _set(stack(m), addr=0x10), "page-aligned"),
    "attachments overlapping": (_overlap, "overlaps"),
    "attachment of an unknown badge": (
        lambda m: _set(stack(m), ds_badge=unused_badge(m)), "no object of the checkpoint"),
    "attachment of a thread": (
        lambda m: _set(stack(m), ds_badge=thread(m).ref.badge), "a thread, not"),
    "ROM attached writable": (lambda m: _set(text(m), writable=True), "ROM dataspace writable"),
    "too many attachments": (_many_attachments, "attachments"),
    "stack area moved": (
        lambda m: _set(area(m, m.pd.stack_area), addr=0x30000000), "stack area is not attached"),
    "region map attached in itself": (_map_in_itself, "second time or into itself"),
    "region map of another size": (
        lambda m: _set(m.pd.linker_area, size=2 * abi.LINKER_AREA_SIZE), "linker area has"),
    "signal context of a thread": (
        lambda m: _set(m.pd.signal_contexts[0], source_badge=thread(m).ref.badge),
        "not a signal_source"),
    "timer signals a dataspace": (
        lambda m: _set(m.timer_sessions[0], sigh_badge=data(m).ds_badge),
        "not a signal_context"),
    "IRQ bound to a signal source": (
        lambda m: _set(m.pd.signal_sources[0],
                       attached_thread_badge=m.pd.signal_sources[0].ref.badge),
        "not a thread"),
    "two objects with one badge": (
        lambda m: _set(m.log_sessions[0].session.ref, badge=m.timer_sessions[0].session.ref.badge),
        "is both a"),
    "object without a badge": (lambda m: _set(thread(m).ref, badge=0), "has no badge"),
    "twelve registers": (lambda m: thread(m).state.r.pop(), "12 general registers"),
    "resumes in data": (
        lambda m: _set(thread(m).state, ip=data(m).addr), "no executable memory"),
    "resumes misaligned": (
        lambda m: _set(thread(m).state, ip=text(m).addr + 2), "no executable memory"),
    "stack pointer outside RAM": (
        lambda m: _set(thread(m).state, sp=0x30000000), "stack pointer"),
    "privileged mode": (lambda m: _set(thread(m).state, cpsr=0x600001D3), "user mode"),
    "unknown cpu exception": (
        lambda m: _set(thread(m).state, cpu_exception=99), "unknown cpu exception"),
    "unknown blocking": (lambda m: _set(thread(m), blocking=9), "unknown way"),
    "RAM used beyond the quota": (
        lambda m: _set(m.pd, ram_used=m.pd.ram_quota + PAGE), "more than its quota"),
    "RAM dataspaces beyond the quota": (
        lambda m: _set(m.pd, ram_quota=m.pd.ram_used - PAGE, ram_used=0),
        "RAM dataspaces take"),
    "caps used beyond the quota": (lambda m: _set(m.pd, cap_quota=8), "more than its quota"),
    "objects beyond the cap quota": (
        lambda m: _set(m.pd, cap_quota=m.pd.cap_used - 1, cap_used=1), "objects need more"),
    "slot address not aligned": (
        lambda m: m.cap_space.add(kcap=0x3FF010, badge=m.parent.badge), "no slot address"),
    "slot listed twice": (
        lambda m: m.cap_space.add(kcap=m.cap_space[0].kcap, badge=m.cap_space[0].badge),
        "listed twice"),
    "slot holding an unknown badge": (
        lambda m: m.cap_space.add(kcap=0x3FF000, badge=unused_badge(m)), "no object"),
    "reference to another object's slot": (
        lambda m: _set(m.log_sessions[0].session.ref, kcap=abi.kcap(abi.CAP_PARENT_INDEX)),
        "names slot"),
    "parent in another slot": (
        lambda m: _set(m.parent, kcap=abi.kcap(abi.CAP_MAIN_THREAD_INDEX)), "parent is not"),
    "session id used twice": (
        lambda m: _set(m.log_sessions[0].session, id=m.timer_sessions[0].session.id),
        "used twice"),
    "session of another service": (
        lambda m: _set(m.log_sessions[0].session, service="Timer"), "recorded as service"),
    "ROM session for another label": (
        lambda m: _set(m.rom_sessions[0].session, args='label="ticker"'), "labelled"),
    "ROM session's dataspace is RAM": (
        lambda m: _set(m.rom_sessions[0].dataspace, badge=data(m).ds_badge),
        "not a rom_dataspace"),
    "ROM dataspace of another size": (
        lambda m: _set(ram(m, text(m).ds_badge), size=ram(m, text(m).ds_badge).size + PAGE),
        "module takes"),
    "binary without its ROM session": (
        lambda m: m.rom_sessions.pop(), "ROM sessions for the binary"),
    "config too large": (
        lambda m: _set(m, config=b"#" * (MAX_CONFIG_SIZE + 1)), "config of"),
    "no component name": (lambda m: _set(m, component=""), "names no component"),
}


def forge(checkpoint: Checkpoint, change) -> Checkpoint:
    manifest = pb.Manifest()
    manifest.CopyFrom(checkpoint.manifest)
    change(manifest)
    forged = Checkpoint(manifest, dict(checkpoint.pages))     # re-signed: a fresh root digest
    forged.verify()
    return forged


def board_state(board):
    roms = {name: board.rom_dataspace(name).read(0, len(module.data))
            for name, module in board.roms.items()}
    return (board.cr.components(), list(board.cr.staged), board.free_ram, board.free_caps,
            len(board.kernel.badges), len(board.kernel.threads), sorted(board.logs), roms)


@pytest.mark.parametrize("name", FORGERIES)
def test_a_forged_manifest_is_refused_and_changes_nothing(original, make_board, rom_dir, name):
    change, why = FORGERIES[name]
    forged = forge(original, change)
    target = make_board("boardB")
    before = board_state(target)
    with pytest.raises(CheckpointCorrupt) as raised:
        target.cr.restore(forged)
    assert why in str(raised.value), str(raised.value)
    assert board_state(target) == before
    assert {n: m.data for n, m in target.roms.items()} == {
        p.name: p.read_bytes() for p in rom_dir.iterdir() if p.is_file()}

    target.cr.start("witness", "counter")
    target.run(1.0)
    assert len(counts(target, "witness")) >= 4 and not errors_in(target, "witness")


def test_the_forgeries_are_refused_in_a_later_round_too(original, make_board):
    """An incremental is checked like the full checkpoint: a staged child stays as it was."""
    target = make_board("boardB")
    restorer = target.cr.restorer()
    restorer.stage(original)
    for name in ("parent cap in the code segment", "attachment beyond its dataspace",
                 "twelve registers"):
        change, why = FORGERIES[name]

        def incremental(m, change=change):
            m.parent_id, m.id, m.sequence = original.id, "f" * 32, 1
            change(m)

        with pytest.raises(CheckpointCorrupt, match=why):
            restorer.stage(forge(original, incremental))
    child, _report = restorer.commit()           # the intact round still restores
    target.cr.adopt(child)
    target.run(1.0)
    assert len(counts(target)) >= 4 and not errors_in(target, "counter")


def test_the_unforged_checkpoint_restores(original, make_board):
    """The control: the same checkpoint, unchanged, restores and counts on."""
    target = make_board("boardB")
    target.cr.restore(forge(original, lambda m: None))
    target.run(1.0)
    assert len(counts(target)) >= 4 and not errors_in(target, "counter")


def test_a_page_list_of_the_wrong_length_is_refused(original, make_board):
    """Caught by verification already (check_page_lists), before any restore step."""
    manifest = pb.Manifest()
    manifest.CopyFrom(original.manifest)
    ds = ram(manifest, data(manifest).ds_badge)
    ds.pages.append(b"")
    target = make_board("boardB")
    before = board_state(target)
    with pytest.raises(CheckpointCorrupt, match="lists"):
        target.cr.restore(Checkpoint(manifest, dict(original.pages)))
    assert board_state(target) == before
