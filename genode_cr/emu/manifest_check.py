"""What a restore checks of a manifest before it builds anything.

A manifest whose root digest checks out can still be inconsistent: forged
and re-signed, or written by a broken producer. The CR component acts on it
with core's authority (it allocates, attaches and writes into the child's
memory), so everything it will act on is checked first:

- every object has its own non-zero badge, and every reference names an
  object of the right kind;
- sessions have distinct ids and the service their entry says; a ROM
  session's label is its module, and each module has one ROM dataspace;
- every attachment lies inside its region map and inside its dataspace, is
  page-aligned, overlaps no other, and never attaches a ROM writable; a
  region map is attached at most once and never inside itself; the stack
  and linker areas sit where the PD puts them;
- the capability map and the raw parent capability lie in RAM the child may
  write (so the restore's own writes never land in a ROM);
- thread states are plausible: 13 registers, user mode, and a running
  thread's ip in executable memory, its sp in (or at the top of) its RAM;
- the quota pays for every object and dataspace, and all counts are bounded;
- every slot of the kernel capability space holds a known object.

Everything else is ``CheckpointCorrupt`` naming what is wrong. Whether the
target board can host the checkpoint (arch, ROMs, free quota, name) is the
restorer's check, made before this one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Callable, NoReturn

from ..errors import CheckpointCorrupt, RomMissing
from ..v1 import checkpoint_pb2 as pb
from . import abi
from .child import BINARY_ROM_SESSION_ID, CONFIG_ROM, MAX_CONFIG_SIZE, session_label
from .cpu import USER_MODE_CPSR, CpuException
from .memory import page_align
from .services import RomModule

__all__ = ["MAX_ATTACHMENTS", "MAX_CAP_SLOTS", "check_manifest", "rom_dataspace_modules"]

PAGE = abi.PAGE_SIZE
ADDRESS_SPACE_SIZE = 1 << 32
#: Far more than any component here uses; each attachment is a mapping the
#: restore makes, so their number must not be the manifest's to choose.
MAX_ATTACHMENTS = 1 << 16
MAX_CAP_SLOTS = 1 << 16
REGISTERS = 13
MODE_MASK = 0x1F
THUMB = 1 << 5
#: cpsr bits user code can neither set nor run with: Jazelle, big-endian
#: data, and the A/I/F masks.
PRIVILEGED_BITS = (1 << 24) | (1 << 9) | (1 << 8) | (1 << 7) | (1 << 6)
#: What the restore creates for every child before the manifest's objects:
#: the PD session, parent, CPU session and the PD's three region maps.
BASE_CAPS = 6

DATASPACE_KINDS = ("dataspace", "rom_dataspace", "managed_dataspace")


@dataclass(frozen=True)
class _Range:
    """A leaf attachment as the child's address space shows it."""
    va: int
    size: int
    ram: bool
    writable: bool
    executable: bool

    @property
    def end(self) -> int:
        return self.va + self.size


def rom_dataspace_modules(m: pb.Manifest) -> dict[int, str]:
    """ROM dataspace badge -> the module its ROM sessions name."""
    return {r.dataspace.badge: r.module for r in m.rom_sessions if r.dataspace.badge}


def check_manifest(m: pb.Manifest, roms: Mapping[str, RomModule]) -> None:
    """Raises CheckpointCorrupt unless ``m`` is consistent; ``roms`` are the
    target's modules (those the manifest names must be there already)."""
    _Checker(m, roms).run()


class _Checker:
    def __init__(self, m: pb.Manifest, roms: Mapping[str, RomModule]):
        self.m = m
        self.roms = roms
        self.kinds: dict[int, str] = {}             # badge -> kind
        self.refs: list[tuple[str, pb.ObjectRef]] = []
        self.ds_sizes: dict[int, int] = {}          # RAM/ROM dataspace badge -> size
        self.maps: dict[int, tuple[str, pb.RegionMap]] = {}   # map badge -> (what, map)
        self.managed: dict[int, int] = {}            # managed ds badge -> map badge
        self.ranges: list[_Range] = []

    def run(self) -> None:
        m = self.m
        if not m.component:
            _fail("the manifest names no component")
        if len(m.config) > MAX_CONFIG_SIZE:
            _fail(f"a config of {len(m.config)} bytes, more than {MAX_CONFIG_SIZE}")
        self._objects()
        self._references()
        self._sessions()
        self._quota()
        self._region_maps()
        self._addresses()
        self._threads()
        self._cap_space()

    # --- objects ---------------------------------------------------------------

    def _add(self, ref: pb.ObjectRef, kind: str, what: str) -> None:
        if not ref.badge:
            _fail(f"{what} has no badge")
        other = self.kinds.get(ref.badge)
        if other is not None:
            _fail(f"badge {ref.badge} is both a {other} and {what}")
        self.kinds[ref.badge] = kind
        self.refs.append((what, ref))

    def _objects(self) -> None:
        m = self.m
        self._add(m.parent, "parent", "the parent")
        self._add(m.pd.session.ref, "pd", "the PD session")
        self._add(m.cpu.session.ref, "cpu", "the CPU session")
        fixed = (("address space", m.pd.address_space), ("stack area", m.pd.stack_area),
                 ("linker area", m.pd.linker_area))
        rm_maps = [(f"region map {i} of RM session {s.session.id}", r)
                   for s in m.rm_sessions for i, r in enumerate(s.region_maps)]
        for what, rm in (*fixed, *rm_maps):
            self._add(rm.ref, "region_map", f"the {what}")
            self._add(rm.dataspace, "managed_dataspace", f"the managed dataspace of the {what}")
            self.maps[rm.ref.badge] = (what, rm)
            self.managed[rm.dataspace.badge] = rm.ref.badge
        for kind, sessions in (("log", m.log_sessions), ("timer", m.timer_sessions),
                               ("rm", m.rm_sessions)):
            for s in sessions:
                self._add(s.session.ref, kind, f"{kind} session {s.session.id}")
        for s in m.rom_sessions:
            if s.session.id == BINARY_ROM_SESSION_ID and not s.session.ref.badge:
                continue        # the binary's, opened by the parent: the child holds no cap
            self._add(s.session.ref, "rom", f"ROM session {s.session.id}")
        for t in m.cpu.threads:
            self._add(t.ref, "thread", f"thread {t.name!r}")
        for s in m.pd.signal_sources:
            self._add(s.ref, "signal_source", "a signal source")
            self._add(s.semaphore, "irq", f"the IRQ of signal source {s.ref.badge}")
        for c in m.pd.signal_contexts:
            self._add(c.ref, "signal_context", "a signal context")
        for g in m.pd.native_caps:
            self._add(g.ref, "rpc_gate", "an RPC gate")
        for ds in m.dataspaces:
            if ds.kind == pb.DATASPACE_RAM:
                if not ds.size:
                    _fail(f"RAM dataspace {ds.ref.badge} has size 0")
                self._add(ds.ref, "dataspace", f"RAM dataspace {ds.ref.badge}")
            else:
                self._add(ds.ref, "rom_dataspace", f"ROM dataspace {ds.ref.badge}")
            self.ds_sizes[ds.ref.badge] = ds.size

    def _expect(self, badge: int, kinds: Iterable[str], what: str, *, optional: bool = False) -> str:
        kinds = tuple(kinds)
        if not badge and optional:
            return ""
        kind = self.kinds.get(badge)
        if kind is None:
            _fail(f"{what} refers to badge {badge}, which is no object of the checkpoint")
        if kind not in kinds:
            _fail(f"{what} refers to badge {badge}, a {kind}, not a {' or '.join(kinds)}")
        return kind

    def _references(self) -> None:
        m = self.m
        for t in m.timer_sessions:
            self._expect(t.sigh_badge, ["signal_context"],
                         f"timer session {t.session.id}'s signal handler", optional=True)
        for c in m.pd.signal_contexts:
            self._expect(c.source_badge, ["signal_source"], f"signal context {c.ref.badge}")
        for s in m.pd.signal_sources:
            self._expect(s.attached_thread_badge, ["thread"],
                         f"the IRQ binding of signal source {s.ref.badge}", optional=True)
        for g in m.pd.native_caps:
            self._expect(g.ep_thread_badge, ["thread"], f"RPC gate {g.ref.badge}")
        for s in m.rom_sessions:
            self._expect(s.dataspace.badge, ["rom_dataspace"],
                         f"ROM session {s.session.id}'s dataspace")

    # --- sessions ------------------------------------------------------------------

    def _sessions(self) -> None:
        m = self.m
        for what, info, service, id in (("PD", m.pd.session, "PD", abi.SESSION_ID_PD),
                                        ("CPU", m.cpu.session, "CPU", abi.SESSION_ID_CPU)):
            if info.id != id or info.service != service:
                _fail(f"the {what} session is recorded as {info.service!r} with id {info.id}")
        ids = {abi.SESSION_ID_PD, abi.SESSION_ID_CPU}
        binary = 0
        for service, sessions in (("LOG", m.log_sessions), ("Timer", m.timer_sessions),
                                  ("RM", m.rm_sessions), ("ROM", m.rom_sessions)):
            for s in sessions:
                info = s.session
                if info.service != service:
                    _fail(f"a {service} session is recorded as service {info.service!r}")
                if info.id == BINARY_ROM_SESSION_ID and service == "ROM":
                    binary += 1
                    if s.module != m.rom.name or s.digest != m.rom.digest:
                        _fail(f"the binary's ROM session names {s.module!r}, not the "
                              f"checkpoint's ROM {m.rom.name!r} and its digest")
                    continue
                if info.id in ids:
                    _fail(f"session id {info.id} is used twice")
                ids.add(info.id)
        if binary != 1:
            _fail(f"{binary} ROM sessions for the binary, not one")
        by_module: dict[str, int] = {}
        for s in m.rom_sessions:
            if session_label(s.session.args) != s.module:
                _fail(f"ROM session {s.session.id} is labelled "
                      f"{session_label(s.session.args)!r} but records module {s.module!r}")
            if s.module != CONFIG_ROM and len(s.digest) != 32:
                _fail(f"ROM session {s.session.id} records no SHA-256 digest of {s.module!r}")
            if by_module.setdefault(s.module, s.dataspace.badge) != s.dataspace.badge:
                _fail(f"ROM module {s.module!r} has two dataspaces")
        modules = rom_dataspace_modules(m)
        if len(set(modules.values())) != len(modules):
            _fail("two ROM modules share one dataspace")
        for ds in m.dataspaces:
            if ds.kind != pb.DATASPACE_ROM:
                continue
            module = modules.get(ds.ref.badge)
            if module is None:
                _fail(f"ROM dataspace {ds.ref.badge} belongs to no ROM session")
            if module != CONFIG_ROM and module not in self.roms:
                raise RomMissing(f"the target has no ROM {module!r}")
            data = m.config if module == CONFIG_ROM else self.roms[module].data
            if ds.size != page_align(max(len(data), 1)):
                _fail(f"ROM dataspace {ds.ref.badge} of {module!r} has {ds.size} bytes, the "
                      f"module takes {page_align(max(len(data), 1))}")

    # --- quota -------------------------------------------------------------------------

    def _quota(self) -> None:
        m, pd = self.m, self.m.pd
        if pd.ram_used > pd.ram_quota or pd.cap_used > pd.cap_quota:
            _fail(f"the PD uses more than its quota (RAM {pd.ram_used} of {pd.ram_quota}, "
                  f"caps {pd.cap_used} of {pd.cap_quota})")
        ram = sum(ds.size for ds in m.dataspaces if ds.kind == pb.DATASPACE_RAM)
        if ram > pd.ram_quota:
            _fail(f"its RAM dataspaces take {ram} bytes, its RAM quota is {pd.ram_quota}")
        caps = (BASE_CAPS + len(m.log_sessions) + len(m.timer_sessions) + len(m.rm_sessions)
                + sum(1 for s in m.rom_sessions if s.session.ref.badge)
                + sum(len(s.region_maps) for s in m.rm_sessions)
                + sum(1 for ds in m.dataspaces if ds.kind == pb.DATASPACE_RAM)
                + len(m.cpu.threads) + len(pd.signal_sources) + len(pd.signal_contexts)
                + len(pd.native_caps))
        if caps > pd.cap_quota:
            _fail(f"its {caps} objects need more than its capability quota of {pd.cap_quota}")
        if len(m.cap_space) > MAX_CAP_SLOTS:
            _fail(f"{len(m.cap_space)} capability slots, more than {MAX_CAP_SLOTS}")

    # --- region maps and the address space ------------------------------------------------

    def _region_maps(self) -> None:
        m = self.m
        expected = {m.pd.address_space.ref.badge: ADDRESS_SPACE_SIZE,
                    m.pd.stack_area.ref.badge: abi.STACK_AREA_SIZE,
                    m.pd.linker_area.ref.badge: abi.LINKER_AREA_SIZE}
        count = 0
        attached_in: dict[int, int] = {}        # inner map badge -> outer map badge
        for badge, (what, rm) in self.maps.items():
            size = expected.get(badge)
            if size is not None and rm.size != size:
                _fail(f"the {what} has {rm.size} bytes, not {size}")
            if size is None and not (0 < rm.size <= ADDRESS_SPACE_SIZE and rm.size % PAGE == 0):
                _fail(f"the {what} has a size of {rm.size} bytes")
        for badge, (what, rm) in self.maps.items():
            count += len(rm.attachments)
            if count > MAX_ATTACHMENTS:
                _fail(f"more than {MAX_ATTACHMENTS} attachments")
            end = 0
            for a in sorted(rm.attachments, key=lambda a: a.addr):
                where = f"the attachment at {a.addr:#x} of the {what}"
                kind = self._expect(a.ds_badge, DATASPACE_KINDS, where)
                if kind == "managed_dataspace":
                    inner = self.managed[a.ds_badge]
                    ds_size = self.maps[inner][1].size
                    if inner == badge or inner in attached_in:
                        _fail(f"{where} attaches a region map a second time or into itself")
                    if a.offset or a.size != ds_size:
                        _fail(f"{where} attaches part of a region map")
                    attached_in[inner] = badge
                else:
                    ds_size = self.ds_sizes[a.ds_badge]
                if a.addr % PAGE or a.size % PAGE or a.offset % PAGE or not a.size:
                    _fail(f"{where} is not page-aligned")
                if a.addr + a.size > rm.size:
                    _fail(f"{where} ends beyond the map's {rm.size:#x} bytes")
                if a.offset + a.size > ds_size:
                    _fail(f"{where} ends beyond its dataspace's {ds_size:#x} bytes")
                if a.writable and kind == "rom_dataspace":
                    _fail(f"{where} attaches a ROM dataspace writable")
                if a.addr < end:
                    _fail(f"{where} overlaps the one before it")
                end = a.addr + a.size
        space = m.pd.address_space.ref.badge
        if space in attached_in:
            _fail("the address space is attached inside a region map")
        for inner, base in ((m.pd.stack_area.ref.badge, abi.STACK_AREA_BASE),
                            (m.pd.linker_area.ref.badge, abi.LINKER_AREA_BASE)):
            outer = attached_in.get(inner)
            at = next((a.addr for a in m.pd.address_space.attachments
                       if self.managed.get(a.ds_badge) == inner), None)
            if outer != space or at != base:
                _fail(f"the {self.maps[inner][0]} is not attached at {base:#x} of the "
                      "address space")
        for badge in self.maps:        # every chain of "attached in" ends
            seen = {badge}
            while badge in attached_in:
                badge = attached_in[badge]
                if badge in seen:
                    _fail(f"region maps are attached inside each other ({self.maps[badge][0]})")
                seen.add(badge)
        self._flatten(space, 0)
        self.ranges.sort(key=lambda r: r.va)

    def _flatten(self, map_badge: int, base: int) -> None:
        # A worklist, not recursion: a forged manifest may nest thousands of maps.
        work = [(map_badge, base)]
        while work:
            map_badge, base = work.pop()
            for a in self.maps[map_badge][1].attachments:
                inner = self.managed.get(a.ds_badge)
                if inner is not None:
                    work.append((inner, base + a.addr))
                else:
                    self.ranges.append(_Range(base + a.addr, a.size,
                                              self.kinds[a.ds_badge] == "dataspace",
                                              a.writable, a.executable))

    def _covered(self, va: int, length: int, ok: Callable[[_Range], bool]) -> bool:
        """Whether [va, va + length) is mapped without a gap, all by ranges ``ok`` accepts."""
        end = va + length
        for r in self.ranges:
            if r.end <= va:
                continue
            if r.va > va or not ok(r):
                return False
            va = r.end
            if va >= end:
                return True
        return va >= end

    def _writable_ram(self, va: int, length: int) -> bool:
        return self._covered(va, length, lambda r: r.ram and r.writable)

    def _addresses(self) -> None:
        m = self.m
        if not 0 < m.cap_map_entries <= abi.CAP_MAP_ENTRIES:
            _fail(f"a capability map of {m.cap_map_entries} entries "
                  f"(1 to {abi.CAP_MAP_ENTRIES})")
        size = abi.CAP_MAP_HEADER_SIZE + m.cap_map_entries * abi.CAP_INDEX_SIZE
        if not m.cap_map_addr or not self._writable_ram(m.cap_map_addr, size):
            _fail(f"the capability map at {m.cap_map_addr:#x} ({size} bytes) is not in RAM "
                  "the child may write")
        if m.parent_cap_addr and not self._writable_ram(m.parent_cap_addr, 8):
            _fail(f"the raw parent capability at {m.parent_cap_addr:#x} is not in RAM the "
                  "child may write")

    # --- threads -----------------------------------------------------------------------

    def _threads(self) -> None:
        exceptions = {int(e) for e in CpuException}
        for t in self.m.cpu.threads:
            what, s = f"thread {t.name!r}", t.state
            if len(s.r) != REGISTERS:
                _fail(f"{what} has {len(s.r)} general registers, not {REGISTERS}")
            if t.blocking not in pb.Blocking.values():
                _fail(f"{what} is blocked in an unknown way ({t.blocking})")
            if s.cpu_exception not in exceptions:
                _fail(f"{what} has an unknown cpu exception {s.cpu_exception}")
            if s.cpsr & MODE_MASK != USER_MODE_CPSR or s.cpsr & PRIVILEGED_BITS:
                _fail(f"{what} would run with cpsr {s.cpsr:#x}, not in user mode")
            if not t.started or t.blocking == pb.BLOCKING_EXITED:
                continue
            align = 2 if s.cpsr & THUMB else 4
            if s.ip % align or not self._covered(s.ip, align, lambda r: r.executable):
                _fail(f"{what} would resume at {s.ip:#x}, which is no executable memory")
            if not any(r.ram and r.writable and r.va <= s.sp <= r.end for r in self.ranges):
                _fail(f"{what} has its stack pointer at {s.sp:#x}, outside its RAM")

    # --- the capability space ------------------------------------------------------------

    def _cap_space(self) -> None:
        m = self.m
        slots: dict[int, int] = {}
        for slot in m.cap_space:
            if not slot.kcap or slot.kcap % (1 << abi.CAP_SHIFT):
                _fail(f"capability slot {slot.kcap:#x} is no slot address")
            if slot.kcap in slots:
                _fail(f"capability slot {slot.kcap:#x} is listed twice")
            if slot.badge not in self.kinds:
                _fail(f"capability slot {slot.kcap:#x} holds badge {slot.badge}, which is no "
                      "object of the checkpoint")
            slots[slot.kcap] = slot.badge
        parent = abi.kcap(abi.CAP_PARENT_INDEX)
        if m.parent.kcap != parent or slots.get(parent) != m.parent.badge:
            _fail(f"the parent is not in slot {parent:#x}")
        for what, ref in self.refs:
            if ref.kcap and slots.get(ref.kcap) != ref.badge:
                _fail(f"{what} names slot {ref.kcap:#x}, which the capability space gives "
                      f"to badge {slots.get(ref.kcap, 0)}")


def _fail(message: str) -> NoReturn:
    raise CheckpointCorrupt(f"inconsistent checkpoint: {message}")
