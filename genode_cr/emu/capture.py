"""Taking a checkpoint of a child: what rtcr's checkpointer records, plus the
kernel state it could not (IRQ attachments, pending signals, timer phase,
RPC gates), read from the CR component's records and the child's memory.

Capabilities are keyed by badge. Their slots come from the kernel's
capability space of the child, not from the child's own capability map: the
map lags behind the kernel while a received capability is not yet recorded,
and forgets a receive slot that the kernel still fills (base-foc's receive
path releases it when the capability was already known). Every occupied
slot is recorded (``Manifest.cap_space``); an object's ``ObjectRef.kcap`` is
the lowest slot that holds it.

An incremental checkpoint lists a RAM dataspace that its parent also lists,
with as many pages, as the entries that changed since (a delta list), unless
the whole list is the shorter encoding; the child's history keeps the
parent's lists to compare with.
"""

from __future__ import annotations

import struct
import uuid
from typing import TYPE_CHECKING

from ..checkpoint import FORMAT_VERSION, ZERO_PAGE_DIGEST, Checkpoint, page_digest
from ..errors import RequestError
from ..v1 import checkpoint_pb2 as pb
from . import abi
from .capability import KernelObject
from .child import BINARY_ROM_SESSION_ID, Child
from .cpu import Blocking, Thread, ThreadState
from .memory import Dataspace, DataspaceKind, RegionMap
from .services import LogSession, RmSession, RomSession, TimerSession

if TYPE_CHECKING:
    from .board import Board

__all__ = ["capture", "read_cap_map"]

PAGE = abi.PAGE_SIZE


def read_cap_map(child: Child) -> dict[int, tuple[int, int]]:
    """index -> (badge, refcount) for every used entry of the child's map."""
    entries = child.cap_map_entries
    raw = child.pd.read(child.cap_map_addr + abi.CAP_MAP_HEADER_SIZE, entries * abi.CAP_INDEX_SIZE)
    result = {}
    for index in range(entries):
        _next, ref, _flags, badge = struct.unpack_from("<IBBH", raw, index * abi.CAP_INDEX_SIZE)
        if ref:
            result[index] = (badge, ref)
    return result


class _Capture:
    def __init__(self, board: Board, child: Child, incremental: bool):
        self.board = board
        self.child = child
        self.incremental = incremental
        self.slots = child.pd.cap_space.items()         # in slot order
        self.kcaps: dict[int, int] = {}
        for kcap, obj in self.slots:
            self.kcaps.setdefault(obj.badge, kcap)
        self.described: set[int] = set()               # badges the manifest has an entry for
        self.pages: dict[bytes, bytes] = {}
        # This capture's page lists; they become the history only once it succeeds,
        # since the next incremental's delta lists are relative to them.
        self.page_digests: dict[int, list[bytes]] = {}

    def ref(self, obj: KernelObject | None) -> pb.ObjectRef:
        if obj is None:
            return pb.ObjectRef()
        self.described.add(obj.badge)
        return pb.ObjectRef(badge=obj.badge, kcap=self.kcaps.get(obj.badge, 0))

    def session_info(self, id: int, service: str, args: str, obj: KernelObject) -> pb.SessionInfo:
        return pb.SessionInfo(ref=self.ref(obj), id=id, service=service, args=args)

    # --- memory --------------------------------------------------------------

    def dataspace(self, ds: Dataspace) -> pb.Dataspace:
        message = pb.Dataspace(ref=self.ref(ds), size=ds.size)
        if ds.ds_kind is DataspaceKind.ROM:
            message.kind = pb.DATASPACE_ROM
            return message
        history = self.child.history
        count = ds.size // PAGE
        previous = history.page_digests.get(ds.badge) if self.incremental else None
        if previous is not None and len(previous) != count:
            previous = None      # a badge that came back for a dataspace of another size
        unit_pages = self.board.kernel.tracking_unit_pages
        if previous is not None and ds.dirty_units is not None:
            digests = list(previous)
            pages = [p for u in sorted(ds.dirty_units)
                     for p in range(u * unit_pages, min((u + 1) * unit_pages, count))]
        else:
            digests = [b""] * count
            pages = range(count)
        view = ds.view()
        for i in pages:
            content = view[i * PAGE:(i + 1) * PAGE]
            digest = page_digest(content)
            if digest == ZERO_PAGE_DIGEST:
                digests[i] = b""
                continue
            digests[i] = digest
            if digest not in history.shipped and digest not in self.pages:
                self.pages[digest] = content.tobytes()
        self.page_digests[ds.badge] = digests
        if previous is not None:
            delta = pb.Dataspace(pages_from_parent=True, changed=[
                pb.PageUpdate(index=i, digest=digests[i]) for i in pages
                if digests[i] != previous[i]])
            if delta.ByteSize() < pb.Dataspace(pages=digests).ByteSize():
                message.MergeFrom(delta)
                return message
        message.pages.extend(digests)
        return message

    def region_map(self, rm: RegionMap) -> pb.RegionMap:
        return pb.RegionMap(
            ref=self.ref(rm), dataspace=self.ref(rm.managed), base=rm.base or 0, size=rm.size,
            attachments=[pb.Attachment(ds_badge=a.dataspace.badge, addr=a.addr, size=a.size,
                                       offset=a.offset, writable=a.writable,
                                       executable=a.executable)
                         for a in sorted(rm.attachments.values(), key=lambda a: a.addr)])

    # --- threads ---------------------------------------------------------------

    def thread(self, thread: Thread) -> pb.Thread:
        state = thread.get_state()
        blocking = {
            Blocking.IRQ_RECEIVE: pb.BLOCKING_IRQ_RECEIVE,
            Blocking.REPLY_WAIT: pb.BLOCKING_REPLY_WAIT,
            Blocking.CALL: pb.BLOCKING_CALL,
        }.get(thread.blocking, pb.BLOCKING_NONE)
        if thread.state is ThreadState.EXITED:
            blocking = pb.BLOCKING_EXITED
        return pb.Thread(
            ref=self.ref(thread), name=thread.name,
            main=self.child.pd.cap_space.lookup(abi.kcap(abi.CAP_MAIN_THREAD_INDEX)) is thread,
            started=thread.started, paused=thread.paused and not self.child.paused,
            state=pb.CpuState(r=state.r, sp=state.sp, lr=state.lr, ip=state.ip, cpsr=state.cpsr,
                              cpu_exception=state.cpu_exception),
            blocking=blocking)

    # --- the whole tree -----------------------------------------------------------

    def manifest(self, since: str, frozen: bool) -> pb.Manifest:
        child, pd, kernel = self.child, self.child.pd, self.board.kernel
        m = pb.Manifest(
            format_version=FORMAT_VERSION, board=self.board.name, arch=self.board.arch,
            kernel=self.board.kernel_name, component=child.name, id=uuid.uuid4().hex,
            parent_id=since, sequence=child.history.sequence + 1 if since else 0,
            taken_at_us=kernel.now_us, frozen=frozen,
            rom=pb.RomModule(name=child.rom.name, digest=child.rom.digest, size=len(child.rom.data)),
            page_size=PAGE, tracking_unit_pages=kernel.tracking_unit_pages,
            cap_map_addr=child.cap_map_addr, cap_map_entries=child.cap_map_entries,
            parent_cap_addr=child.parent_cap_addr, parent=self.ref(child.parent))
        m.parent.kcap = abi.kcap(abi.CAP_PARENT_INDEX)
        m.pd.CopyFrom(pb.PdSession(
            session=self.session_info(abi.SESSION_ID_PD, "PD", "", pd),
            address_space=self.region_map(pd.address_space()),
            stack_area=self.region_map(pd.stack_area()),
            linker_area=self.region_map(pd.linker_area()),
            signal_sources=[pb.SignalSource(
                ref=self.ref(s), semaphore=self.ref(s.semaphore),
                attached_thread_badge=s.semaphore.attached.badge if s.semaphore.attached else 0,
                irq_pending=s.semaphore.pending) for s in pd.signal_sources if not s.destroyed],
            signal_contexts=[pb.SignalContext(
                ref=self.ref(c), source_badge=c.source.badge, imprint=c.imprint,
                pending=c.pending) for c in pd.signal_contexts if not c.destroyed],
            native_caps=[pb.NativeCap(ref=self.ref(g), ep_thread_badge=g.ep.badge)
                         for g in pd.gates if not g.destroyed],
            ram_quota=pd.ram_quota, ram_used=pd.ram_used,
            cap_quota=pd.cap_quota, cap_used=pd.cap_used))
        m.cpu.CopyFrom(pb.CpuSession(
            session=self.session_info(abi.SESSION_ID_CPU, "CPU", "", child.cpu),
            threads=[self.thread(t) for t in child.threads]))
        for record in sorted(child.sessions.values(), key=lambda r: r.id):
            s = record.session
            info = self.session_info(record.id, record.service, record.args, s)
            if isinstance(s, LogSession):
                m.log_sessions.add(session=info)
            elif isinstance(s, TimerSession):
                m.timer_sessions.add(
                    session=info, sigh_badge=s.sigh_context.badge if s.sigh_context else 0,
                    armed=s.deadline_us is not None, periodic=bool(s.period_us),
                    period_us=s.period_us, remaining_us=s.remaining_us() or 0,
                    elapsed_us=s.elapsed_us())
            elif isinstance(s, RmSession):
                m.rm_sessions.add(session=info,
                                  region_maps=[self.region_map(r) for r in s.region_maps])
            elif isinstance(s, RomSession):
                m.rom_sessions.add(session=info, module=s.module.name, digest=s.module.digest,
                                   dataspace=self.ref(s.dataspace()[0]))
        binary = child.binary_rom
        m.rom_sessions.add(session=pb.SessionInfo(id=BINARY_ROM_SESSION_ID, service="ROM",
                                                  args=f'label="{child.rom.name}"'),
                           module=child.rom.name, digest=child.rom.digest,
                           dataspace=self.ref(binary))
        attached = {a.dataspace.badge: a.dataspace for r in pd.region_maps()
                    for a in r.attachments.values()}
        roms = {b: ds for b, ds in attached.items() if ds.ds_kind is DataspaceKind.ROM}
        # A ROM dataspace the child received but has not attached still has
        # a slot in its capability space, so the restore must recreate it too.
        for record in child.sessions.values():
            if isinstance(record.session, RomSession):
                ds = record.session.dataspace()[0]
                roms.setdefault(ds.badge, ds)
        for _kcap, obj in self.slots:
            if isinstance(obj, Dataspace) and obj.ds_kind is DataspaceKind.ROM:
                roms.setdefault(obj.badge, obj)
        m.dataspaces.extend(self.dataspace(ds) for ds in [*pd.dataspaces, *roms.values()])
        m.config = child.config.data
        m.cap_space.extend(pb.CapSlot(kcap=kcap, badge=obj.badge) for kcap, obj in self.slots)
        undescribed = sorted({obj.kind for _kcap, obj in self.slots
                              if obj.badge not in self.described})
        if undescribed:
            # A board that lets a child hold what a checkpoint cannot express
            # must not pretend that the checkpoint is whole.
            raise RequestError(f"{child.name} holds capabilities a checkpoint cannot describe "
                               f"({', '.join(undescribed)})")
        return m


def capture(board: Board, child: Child, since: str | None, freeze: bool) -> Checkpoint:
    if not child.cap_map_addr:
        raise RequestError(f"{child.name} has not announced its capability map yet")
    if since and since != child.history.last_id:
        raise RequestError(f"{child.name}: an incremental checkpoint must follow the last one "
                           f"({child.history.last_id or 'none taken'}), not {since}")
    # No checkpoint may hold a badge the kernel delivered and the child has not
    # yet put in its capability map: a restore could not translate it.
    unsettled = board.kernel.settle(child.threads)
    if unsettled:
        names = ", ".join(repr(t.name) for t in unsettled)
        raise RequestError(
            f"{child.name}: thread {names} holds a badge the kernel handed over and did not "
            f"reach the kernel again within {board.kernel.settle_budget} instructions; no "
            "checkpoint taken (the component ran on; try again)")
    froze = freeze and not child.paused
    if freeze:
        child.pause()
    history = child.history
    kept = history.shipped, history.page_digests
    if not since:
        history.shipped = set()
        history.page_digests = {}
    try:
        capture = _Capture(board, child, incremental=bool(since))
        manifest = capture.manifest(since or "", frozen=child.paused)
    except BaseException:
        # Refused: the component runs on as it did, and the next incremental is
        # still relative to the last checkpoint taken.
        history.shipped, history.page_digests = kept
        if froze:
            child.resume()
        raise
    history.shipped |= capture.pages.keys()
    # Only the dataspaces of this capture: a freed one's badge may come back for another.
    history.page_digests = capture.page_digests
    history.last_id = manifest.id
    history.sequence = manifest.sequence
    child.pd.start_dirty_tracking()
    return Checkpoint(manifest, capture.pages)
