"""Restoring a child from a checkpoint chain through the invalid-dataspace path.

The child is created without ELF loading and without an initial thread
(Genode's Child with an invalid ELF dataspace); everything else is recreated
by the CR component through the ordinary session interfaces, in dependency
order, and every new object gets a fresh badge of this board. Then every
slot of the child's kernel capability space is filled again (the recorded
slots, not only those the child's map knows), every badge in the child's memory
is translated (its capability map and the raw parent capability in its data
segment), the kernel state no memory image holds is rebuilt (IRQ
attachments, RPC gates, timers with their phase), and the threads start
where they were.

A restore can arrive in rounds, as live migration sends it: ``stage`` takes
a full checkpoint and then each incremental one, creating the child on the
first round and filling memory as pages arrive; ``commit`` recreates the
rest from the newest manifest and starts the threads. Each staged manifest's
page lists are resolved against the previous one's (an incremental may list
only what changed), and memory is filled from the resolved lists. Nothing is
registered with the board before the commit succeeds; ``abort``, or a failure
at any step, destroys what was built, so the board is left as it was.

Every staged manifest is checked before it is acted on (the target's ROMs by
name and digest, then ``manifest_check``): a manifest that verifies but is
inconsistent is refused before anything is built, and the restore never
writes outside the child's writable RAM.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Iterable, TypeVar

from ..checkpoint import Checkpoint, PageLists, order_chain, referenced_in, resolve_pages
from ..errors import (BrokenChain, CheckpointCorrupt, InsufficientQuota, NameInUse, RequestError,
                      RomMismatch, RomMissing, WrongArch)
from ..model import RestoreReport, Translation
from ..v1 import checkpoint_pb2 as pb
from . import abi
from .capability import ComponentError, KernelObject
from .child import BINARY_ROM_SESSION_ID, CONFIG_ROM, Child, SessionRecord
from .cpu import CpuState, Thread, ThreadState
from .manifest_check import check_manifest, rom_dataspace_modules
from .memory import Dataspace, RegionMap
from .services import RmSession, TimerSession
from .signals import SignalContext, SignalSource

if TYPE_CHECKING:
    from .board import Board

__all__ = ["RESTORE_STEPS", "RestoreReport", "Restorer", "Translation", "restore_chain"]

#: The steps in order: the first round of staging creates the child, every
#: round stages memory, the commit does the rest. Tests may skip some of the
#: commit steps to prove that a component notices.
STAGE_STEPS = ("create_child", "recreate_dataspaces", "fill_dataspaces")
COMMIT_STEPS = (
    "recreate_sessions", "attach_regions", "recreate_threads", "recreate_signals",
    "recreate_native_caps", "install_caps", "translate_cap_map", "rewrite_parent_cap",
    "rebind_irqs", "rearm_timers", "set_thread_states", "start_threads",
)
RESTORE_STEPS = STAGE_STEPS + COMMIT_STEPS
#: Names that skip several steps at once; a report lists the name asked for.
SKIP_GROUPS = {"translate_badges": ("translate_cap_map", "rewrite_parent_cap")}
SKIPPABLE = frozenset({"translate_cap_map", "rewrite_parent_cap", "rebind_irqs", "rearm_timers",
                       "recreate_native_caps", *SKIP_GROUPS})

T = TypeVar("T", bound=KernelObject)


class Restorer:
    def __init__(self, board: Board, *, name: str | None = None, skip: Iterable[str] = ()):
        self.board = board
        self.requested_name = name
        self.skip = frozenset(skip)
        unknown = self.skip - SKIPPABLE
        if unknown:
            raise ValueError(f"steps that cannot be skipped: {', '.join(sorted(unknown))}")
        self.manifest: pb.Manifest | None = None
        self.pages: dict[bytes, bytes] = {}          # every page staged so far
        self.page_lists: PageLists = {}              # the newest manifest's, resolved
        self.report = RestoreReport(name or "", "", 0)
        self.objects: dict[int, KernelObject] = {}   # old badge -> new object
        self.kinds: dict[int, str] = {}              # old badge -> what it is
        self.kcaps: dict[int, int] = {}              # old badge -> kcap
        self.written: dict[int, list[bytes]] = {}    # old ds badge -> digests now in memory
        self.child: Child | None = None
        self.committed = False
        self.aborted = False

    @property
    def name(self) -> str:
        assert self.manifest is not None
        return self.requested_name or self.manifest.component

    # --- checks that come before any change to the board ------------------------

    def check(self) -> None:
        """The first round's checks: can this board host the child at all?"""
        m, board = self.manifest, self.board
        assert m is not None
        if m.arch != board.arch or m.kernel != board.kernel_name:
            raise WrongArch(f"checkpoint is for {m.arch}/{m.kernel}, board {board.name} is "
                            f"{board.arch}/{board.kernel_name}")
        if m.page_size != abi.PAGE_SIZE:
            raise CheckpointCorrupt(f"page size {m.page_size} is not {abi.PAGE_SIZE}")
        if self.name in board.cr.children:
            raise NameInUse(f"a component named {self.name!r} already runs on {board.name}")
        self._check_roms(m)
        free_ram, free_caps = board.free_ram, board.free_caps
        if m.pd.ram_quota > free_ram or m.pd.cap_quota > free_caps:
            raise InsufficientQuota(
                f"{self.name} needs {m.pd.ram_quota} bytes RAM and {m.pd.cap_quota} caps, board "
                f"{board.name} has {free_ram} bytes and {free_caps} caps free")
        check_manifest(m, board.roms)

    def _check_roms(self, m: pb.Manifest) -> None:
        """The binary and every module a ROM session names, by name and digest;
        "config" travels in the manifest."""
        board = self.board
        wanted = [(m.rom.name, m.rom.digest, "its binary")]
        wanted += [(s.module, s.digest, f"its ROM session {s.session.id}")
                   for s in m.rom_sessions if s.module != CONFIG_ROM]
        for name, digest, use in wanted:
            module = board.roms.get(name)
            if module is None:
                raise RomMissing(f"board {board.name} has no ROM {name!r}, which "
                                 f"{self.name} needs for {use}")
            if module.digest != digest:
                raise RomMismatch(f"ROM {name!r} on {board.name} differs from the one "
                                  f"{self.name} had for {use} ({module.digest.hex()[:16]} != "
                                  f"{digest.hex()[:16]})")

    def _check_later_round(self, m: pb.Manifest) -> None:
        """A later round's manifest replaces the object tree the commit builds;
        the child it was staged into keeps the first round's PD."""
        previous = self.manifest
        assert previous is not None
        for field in ("rom", "page_size", "arch", "kernel"):
            if getattr(m, field) != getattr(previous, field):
                raise BrokenChain(f"checkpoints of one chain disagree about the {field}")
        if (m.pd.ram_quota, m.pd.cap_quota) != (previous.pd.ram_quota, previous.pd.cap_quota):
            raise BrokenChain("checkpoints of one chain disagree about the quota")
        self._check_roms(m)
        check_manifest(m, self.board.roms)

    # --- rounds -------------------------------------------------------------------

    def stage(self, checkpoint: Checkpoint) -> None:
        """Takes the next checkpoint of the chain: the full one first."""
        self._check_open()
        checkpoint.verify()
        expected = self.manifest.id if self.manifest is not None else ""
        if checkpoint.parent_id != expected:
            raise BrokenChain(
                f"checkpoint {checkpoint.id} follows {checkpoint.parent_id or 'nothing'}, "
                f"expected {'a full checkpoint' if not expected else expected}")
        if self.manifest is not None and checkpoint.component != self.manifest.component:
            raise BrokenChain("checkpoints of different components")
        if self.manifest is not None and checkpoint.manifest.config != self.manifest.config:
            raise BrokenChain("checkpoints of one chain disagree about the component's config")
        first = self.manifest is None
        if not first:
            self._check_later_round(checkpoint.manifest)
        page_lists = resolve_pages(checkpoint.manifest, None if first else self.page_lists)
        missing = referenced_in(page_lists) - self.pages.keys() - checkpoint.pages.keys()
        if missing:
            raise BrokenChain(f"{len(missing)} page(s) referenced by {checkpoint.id} are in no "
                              "checkpoint of the chain")
        self.manifest = checkpoint.manifest
        if first:
            try:
                self.check()
            except BaseException:
                self.manifest = None     # refused: the restorer may take another chain
                raise
            self.report.component = self.name
        self.page_lists = page_lists
        self.pages.update(checkpoint.pages)
        self.report.checkpoint_id = checkpoint.id
        self.report.chain_length += 1
        self._run(("create_child",) if first else ())
        self._run(STAGE_STEPS[1:])
        self.report.rounds += 1

    def commit(self) -> tuple[Child, RestoreReport]:
        self._check_open()
        if self.manifest is None or self.child is None:
            raise RequestError("nothing staged to commit")
        self._run(COMMIT_STEPS)
        self.report.translations = [
            Translation(self.kinds[old], old, obj.badge, self.kcaps[old])
            for old, obj in self.objects.items()]
        self.committed = True
        self.board.cr.staged.remove(self.child)
        return self.child, self.report

    def _check_open(self) -> None:
        if self.committed:
            raise RequestError("restore already committed")
        if self.aborted:
            raise RequestError("restore was aborted; begin a new one")

    def abort(self) -> None:
        self.aborted = not self.committed
        if self.child is not None and not self.committed:
            self.board.cr.staged.remove(self.child)
            self.child.destroy()
        self.child = None

    def _skipped_as(self, step: str) -> str | None:
        if step in self.skip:
            return step
        return next((g for g in sorted(self.skip) if step in SKIP_GROUPS.get(g, ())), None)

    def _run(self, steps: Iterable[str]) -> None:
        try:
            for step in steps:
                skipped_as = self._skipped_as(step)
                if skipped_as:
                    if skipped_as not in self.report.skipped:
                        self.report.skipped.append(skipped_as)
                    continue
                getattr(self, step)()
                if step not in self.report.steps:
                    self.report.steps.append(step)
        except ComponentError as error:
            self.abort()
            if error.code in (abi.E_OUT_OF_RAM, abi.E_OUT_OF_CAPS):
                raise InsufficientQuota(f"restoring {self.name}: {error}") from error
            raise CheckpointCorrupt(f"restoring {self.name}: the checkpoint's object tree is "
                                    f"inconsistent: {error}") from error
        except BaseException:
            self.abort()
            raise

    def _map(self, kind: str, old: pb.ObjectRef, obj: KernelObject) -> None:
        if not old.badge:
            return
        self.objects[old.badge] = obj
        self.kinds[old.badge] = kind
        self.kcaps[old.badge] = old.kcap

    def _new(self, badge: int, cls: type[T] = KernelObject) -> T:  # type: ignore[assignment]
        """The new object for an old badge; the manifest checks make a miss or
        an object of the wrong kind impossible, this keeps it a clear error."""
        obj = self.objects.get(badge)
        if obj is None:
            raise CheckpointCorrupt(f"checkpoint refers to unknown object badge {badge}")
        if not isinstance(obj, cls):
            raise CheckpointCorrupt(f"checkpoint badge {badge} is a {obj.kind}, not a "
                                    f"{cls.__name__}")
        return obj

    # 1. Genode's Child with an invalid ELF dataspace: PD (with its region maps),
    #    CPU session and parent capability, no ELF loading, no initial thread.
    def create_child(self) -> None:
        m = self.manifest
        assert m is not None
        child = self.child = Child(self.board, self.name, self.board.roms[m.rom.name],
                                   m.pd.ram_quota, m.pd.cap_quota, m.config, elf=None)
        self.board.cr.staged.append(child)
        child.cap_map_addr, child.cap_map_entries = m.cap_map_addr, m.cap_map_entries
        child.parent_cap_addr = m.parent_cap_addr
        pd = child.pd
        self._map("parent", m.parent, child.parent)
        self._map("pd", m.pd.session.ref, pd)
        self._map("cpu", m.cpu.session.ref, child.cpu)
        for old, new in ((m.pd.address_space, pd.address_space()),
                         (m.pd.stack_area, pd.stack_area()), (m.pd.linker_area, pd.linker_area())):
            self._map("region_map", old.ref, new)
            self._map("managed_dataspace", old.dataspace, new.managed)

    def recreate_sessions(self) -> None:
        assert self.child is not None
        child = self.child
        timers = {t.session.id: t for t in self.manifest.timer_sessions}
        for info, kind in self._sessions():
            if info.id == BINARY_ROM_SESSION_ID and kind == "rom":
                continue
            if kind == "rom":       # as its module: the target's, or the manifest's config
                session = child.open_rom_session(self._rom_modules[info.id])
            else:
                session = child.open_session(
                    info.service, info.args,
                    elapsed_us=timers[info.id].elapsed_us if kind == "timer" else 0)
            child.sessions[info.id] = SessionRecord(info.id, info.service, info.args, session)
            self._map(kind, info.ref, session)
        for rm in self.manifest.rm_sessions:
            session = self._new(rm.session.ref.badge, RmSession)
            for old in rm.region_maps:
                region_map = session.create(old.size)
                self._map("region_map", old.ref, region_map)
                self._map("managed_dataspace", old.dataspace, region_map.managed)

    @property
    def _rom_modules(self) -> dict[int, str]:
        return {s.session.id: s.module for s in self.manifest.rom_sessions}

    def _sessions(self) -> list[tuple[pb.SessionInfo, str]]:
        m = self.manifest
        return ([(s.session, "log") for s in m.log_sessions]
                + [(s.session, "timer") for s in m.timer_sessions]
                + [(s.session, "rm") for s in m.rm_sessions]
                + [(s.session, "rom") for s in m.rom_sessions])

    def recreate_dataspaces(self) -> None:
        """Creates the dataspaces this round knows of and frees vanished ones (and
        one whose badge came back for a dataspace of another size)."""
        assert self.child is not None and self.manifest is not None
        current = {badge: len(digests) for badge, digests in self.page_lists.items()}
        for badge in [b for b, digests in self.written.items()
                      if current.get(b) != len(digests)]:
            ds = self.objects.pop(badge)
            assert isinstance(ds, Dataspace)
            self.child.pd.free(ds)
            del self.written[badge], self.kinds[badge], self.kcaps[badge]
        # A ROM dataspace is the target's dataspace of the module the child's
        # ROM session named (the child's own for "config"); one no session
        # names is the binary's.
        modules = rom_dataspace_modules(self.manifest)
        for ds in self.manifest.dataspaces:
            if ds.ref.badge in self.objects:
                if ds.kind == pb.DATASPACE_RAM and ds.ref.badge not in self.written:
                    raise CheckpointCorrupt(f"RAM dataspace {ds.ref.badge} has the badge of "
                                            f"another object ({self.kinds[ds.ref.badge]})")
                continue
            if ds.kind == pb.DATASPACE_ROM:
                module = modules.get(ds.ref.badge, self.manifest.rom.name)
                self._map("rom_dataspace", ds.ref, self.child.rom_dataspace(module))
            else:
                self._map("dataspace", ds.ref, self.child.pd.alloc_ram(ds.size))
                self.written[ds.ref.badge] = [b""] * (ds.size // abi.PAGE_SIZE)
                self.report.dataspaces += 1

    def fill_dataspaces(self) -> None:
        """Writes every page whose content differs from what is in memory."""
        assert self.manifest is not None
        zero = bytes(abi.PAGE_SIZE)
        for badge, digests in self.page_lists.items():
            ds = self._new(badge, Dataspace)
            written = self.written[badge]
            for index, digest in enumerate(digests):
                if written[index] == digest:
                    continue
                ds.write(index * abi.PAGE_SIZE, self.pages[digest] if digest else zero)
                written[index] = digest
                self.report.pages_written += 1
                self.report.bytes_written += abi.PAGE_SIZE

    def attach_regions(self) -> None:
        m = self.manifest
        maps = [m.pd.address_space, m.pd.stack_area, m.pd.linker_area,
                *(r for s in m.rm_sessions for r in s.region_maps)]
        # Inner maps first, so that attaching them maps their content at once.
        for old in sorted(maps, key=lambda r: r.ref.badge == m.pd.address_space.ref.badge):
            region_map = self._new(old.ref.badge, RegionMap)
            for a in old.attachments:
                ds = self._new(a.ds_badge, Dataspace)
                existing = region_map.attachments.get(a.addr)
                if existing is not None and existing.dataspace is ds:
                    continue        # the stack and linker areas come with the PD
                region_map.attach(ds, a.addr, size=a.size, offset=a.offset,
                                  writable=a.writable, executable=a.executable)

    def recreate_threads(self) -> None:
        assert self.child is not None
        for old in self.manifest.cpu.threads:
            thread = self.child.cpu.create_thread(self.child.pd, old.name)
            self._map("thread", old.ref, thread)
            self.report.threads += 1

    def recreate_signals(self) -> None:
        assert self.child is not None
        pd = self.child.pd
        for old in self.manifest.pd.signal_sources:
            source = pd.alloc_signal_source()
            self._map("signal_source", old.ref, source)
            self._map("irq", old.semaphore, source.semaphore)
        for old in self.manifest.pd.signal_contexts:
            source = self._new(old.source_badge, SignalSource)
            context = pd.alloc_context(source, old.imprint)
            if old.pending:
                context.pending = old.pending
                source.queue.append(context)
            self._map("signal_context", old.ref, context)

    def recreate_native_caps(self) -> None:
        assert self.child is not None
        for old in self.manifest.pd.native_caps:
            gate = self.child.pd.alloc_rpc_cap(self._new(old.ep_thread_badge, Thread))
            self._map("rpc_gate", old.ref, gate)
            self.report.rpc_gates += 1

    def install_caps(self) -> None:
        """Fills every slot the kernel's capability space had, whatever the
        child's own map says of it."""
        assert self.child is not None
        space = self.child.pd.cap_space
        for slot in self.manifest.cap_space:
            obj = self.objects.get(slot.badge)
            if obj is None:
                continue    # only a skipped step leaves a checked badge without its object
            space.install(slot.kcap, obj)
            self.report.caps_installed += 1

    def translate_cap_map(self) -> None:
        """Rewrites the child's capability map in place.

        Each used entry gets the new badge of the object that had its old
        one; the manifest checks put the map inside RAM the child may write."""
        assert self.child is not None
        pd, m = self.child.pd, self.manifest
        base = m.cap_map_addr + abi.CAP_MAP_HEADER_SIZE
        raw = bytearray(pd.read(base, m.cap_map_entries * abi.CAP_INDEX_SIZE))
        for index in range(m.cap_map_entries):
            offset = index * abi.CAP_INDEX_SIZE
            nxt, ref, flags, badge = struct.unpack_from("<IBBH", raw, offset)
            if not ref:
                continue
            new = self.objects.get(badge)
            if new is None:
                self.report.cap_map_entries_unknown += 1
                continue
            struct.pack_into("<IBBH", raw, offset, nxt, ref, flags, new.badge)
            self.report.cap_map_entries_translated += 1
        pd.write(base, bytes(raw))

    def rewrite_parent_cap(self) -> None:
        """Writes the raw parent capability as the loader would have: the
        child's runtime checks it against its map on every parent call."""
        assert self.child is not None
        pd, m = self.child.pd, self.manifest
        if m.parent_cap_addr:
            pd.write(m.parent_cap_addr, struct.pack("<II", abi.kcap(abi.CAP_PARENT_INDEX),
                                                    self.child.parent.badge))
            self.report.parent_cap_rewritten = True

    def rebind_irqs(self) -> None:
        for old in self.manifest.pd.signal_sources:
            source = self._new(old.ref.badge, SignalSource)
            source.semaphore.pending = old.irq_pending
            if old.attached_thread_badge:
                thread = self._new(old.attached_thread_badge, Thread)
                source.semaphore.attach(thread)
                self.report.irqs_rebound += 1

    def rearm_timers(self) -> None:
        for old in self.manifest.timer_sessions:
            timer = self._new(old.session.ref.badge, TimerSession)
            if old.sigh_badge:
                context = self._new(old.sigh_badge, SignalContext)
                timer.sigh_context = context
            if old.armed:
                timer.arm(old.remaining_us, old.period_us if old.periodic else 0)
                self.report.timers_rearmed += 1

    def set_thread_states(self) -> None:
        for old in self.manifest.cpu.threads:
            thread = self._new(old.ref.badge)
            assert isinstance(thread, Thread)
            s = old.state
            thread.set_state(CpuState(list(s.r), s.sp, s.lr, s.ip, s.cpsr, s.cpu_exception))

    def start_threads(self) -> None:
        for old in self.manifest.cpu.threads:
            thread = self._new(old.ref.badge)
            assert isinstance(thread, Thread)
            if not old.started:
                continue
            if old.blocking == pb.BLOCKING_EXITED:
                thread.state = ThreadState.EXITED
                thread.release()
                continue
            if old.paused:
                thread.pause()
            # A thread that was blocked starts at its svc and issues the call again.
            s = old.state
            thread.start(s.ip, s.sp, s.r[0])


def restore_chain(board: Board, checkpoints: Iterable[Checkpoint], *, name: str | None = None,
                  skip: Iterable[str] = ()) -> tuple[Child, RestoreReport]:
    """Restores a full checkpoint and its incrementals, given in any order."""
    restorer = Restorer(board, name=name, skip=skip)
    try:
        for checkpoint in order_chain(checkpoints):
            restorer.stage(checkpoint)
        return restorer.commit()
    except BaseException:
        restorer.abort()        # a round refused after the first leaves nothing staged
        raise
