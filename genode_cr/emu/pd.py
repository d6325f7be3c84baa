"""The protection domain: Genode's PD session, backed by one Unicorn instance.

The PD owns the child's capability space, its three region maps, the RAM
dataspaces allocated for it, its signal sources and contexts and its RPC
gates, and accounts RAM and capability quota. Exceeding a quota is an error
result the component sees, never a crash of the board.

Dirty tracking also lives here, because it is a property of the mappings:
writable RAM pages are write-protected, and the first store to a tracking
unit marks the unit and re-enables writes for it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, TypeVar

from unicorn import (UC_ARCH_ARM, UC_HOOK_INTR, UC_HOOK_MEM_WRITE_PROT, UC_MODE_ARM,
                     UC_PROT_EXEC, UC_PROT_READ, UC_PROT_WRITE, Uc)
from unicorn import arm_const as arm

from . import abi
from .capability import CapSpace, ComponentError, KernelObject, RpcObject, rpc
from .memory import Attachment, Dataspace, DataspaceKind, RegionMap, page_align
from .signals import Gate, SignalContext, SignalSource

if TYPE_CHECKING:
    from .kernel import Kernel
    from .cpu import Thread

__all__ = ["ProtectionDomain", "REGISTERS", "TCG_BUFFER_SIZE"]

# Unicorn reserves a large translation buffer per instance by default, which
# fails inside small VMs; our components are tiny.
TCG_BUFFER_SIZE = 8 << 20

#: Cpu_state order: r0..r12, sp, lr, ip, cpsr.
REGISTERS = [getattr(arm, f"UC_ARM_REG_R{i}") for i in range(13)] + [
    arm.UC_ARM_REG_SP, arm.UC_ARM_REG_LR, arm.UC_ARM_REG_PC, arm.UC_ARM_REG_CPSR]
PC = 15
CPSR = 16
STRING_LIMIT = 160

T = TypeVar("T", bound=KernelObject)


@dataclass
class Mapping:
    """One attachment as the CPU sees it. Writable RAM is mapped as one
    Unicorn region per tracking unit: Unicorn 2.1 crashes when mem_protect
    splits a region backed by our memory, and whole regions are all that
    dirty tracking ever needs to protect."""

    va: int
    size: int
    attachment: Attachment
    units: dict[int, tuple[int, int]] = field(default_factory=dict)  # unit -> (va, size)

    @property
    def perms(self) -> int:
        a = self.attachment
        return (UC_PROT_READ | (UC_PROT_WRITE if a.writable else 0)
                | (UC_PROT_EXEC if a.executable else 0))

    @property
    def tracked(self) -> bool:
        return bool(self.units)


def _writable_ram(m: Mapping) -> bool:
    return m.attachment.writable and m.attachment.dataspace.ds_kind is DataspaceKind.RAM


class ProtectionDomain(RpcObject):
    kind = "pd"

    def __init__(self, kernel: Kernel, label: str, ram_quota: int, cap_quota: int):
        super().__init__(kernel.badges)
        self.kernel = kernel
        self.label = label
        self.ram_quota, self.ram_used = ram_quota, 0
        self.cap_quota, self.cap_used = cap_quota, 0
        self.cap_space = CapSpace()
        self.objects: list[KernelObject] = []     # everything created on our behalf
        self.dataspaces: list[Dataspace] = []      # RAM dataspaces we pay for
        self.signal_sources: list[SignalSource] = []
        self.signal_contexts: list[SignalContext] = []
        self.gates: list[Gate] = []
        self.threads: list[Thread] = []
        self._mappings: list[Mapping] = []
        self._mapping_starts: list[int] = []
        self.tracking_unit = kernel.tracking_unit_pages * abi.PAGE_SIZE

        self.uc = Uc(UC_ARCH_ARM, UC_MODE_ARM)
        self.uc.ctl_set_tcg_buffer_size(TCG_BUFFER_SIZE)
        self.uc.hook_add(UC_HOOK_INTR, kernel.on_exception, self)
        self.uc.hook_add(UC_HOOK_MEM_WRITE_PROT, self._on_write_protected)

        try:
            self._address_space = self.create(RegionMap, self, 1 << 32, base=0,
                                              name="address space")
            self._stack_area = self.create(RegionMap, self, abi.STACK_AREA_SIZE,
                                           name="stack area")
            self._linker_area = self.create(RegionMap, self, abi.LINKER_AREA_SIZE,
                                            name="linker area")
            self._address_space.attach(self._stack_area.managed, abi.STACK_AREA_BASE,
                                       writable=True)
            self._address_space.attach(self._linker_area.managed, abi.LINKER_AREA_BASE,
                                       writable=True)
        except BaseException:
            self.destroy()      # out of badges or quota: leave nothing behind
            raise

    # --- quota and object creation --------------------------------------

    def create(self, cls: Callable[..., T], *args, **kwargs) -> T:
        """Creates an object on this PD's behalf, charging one capability."""
        if self.cap_used + 1 > self.cap_quota:
            raise ComponentError(abi.E_OUT_OF_CAPS, f"{self.label}: capability quota exceeded")
        obj = cls(self.kernel.badges, *args, **kwargs)
        self.cap_used += 1
        self.objects.append(obj)
        return obj

    def alloc_ram(self, size: int) -> Dataspace:
        size = page_align(max(size, 1))
        if self.ram_used + size > self.ram_quota:
            raise ComponentError(abi.E_OUT_OF_RAM, f"{self.label}: RAM quota exceeded")
        ds = self.create(Dataspace, size)
        self.ram_used += size
        self.dataspaces.append(ds)
        return ds

    # --- the PD session interface ----------------------------------------

    @rpc(abi.PD_ALLOC, "int")
    def alloc(self, size: int) -> tuple[Dataspace, int]:
        ds = self.alloc_ram(size)
        return ds, ds.size

    @rpc(abi.PD_FREE, "cap")
    def free(self, ds: KernelObject) -> None:
        if not isinstance(ds, Dataspace) or ds not in self.dataspaces:
            raise ComponentError(abi.E_INVALID_CAP)
        for region_map in self.region_maps():
            for addr, a in list(region_map.attachments.items()):
                if a.dataspace is ds:
                    region_map.detach(addr)
        self.dataspaces.remove(ds)
        self.objects.remove(ds)
        self.ram_used -= ds.size
        self.cap_used -= 1
        ds.destroy()

    @rpc(abi.PD_ADDRESS_SPACE)
    def address_space(self) -> RegionMap:
        return self._address_space

    @rpc(abi.PD_STACK_AREA)
    def stack_area(self) -> RegionMap:
        return self._stack_area

    @rpc(abi.PD_LINKER_AREA)
    def linker_area(self) -> RegionMap:
        return self._linker_area

    @rpc(abi.PD_ALLOC_SIGNAL_SOURCE)
    def alloc_signal_source(self) -> SignalSource:
        source = self.create(SignalSource, self.kernel)
        self.objects.append(source.semaphore)
        self.signal_sources.append(source)
        return source

    @rpc(abi.PD_ALLOC_CONTEXT, "cap", "int")
    def alloc_context(self, source: KernelObject, imprint: int) -> SignalContext:
        if not isinstance(source, SignalSource):
            raise ComponentError(abi.E_INVALID_CAP)
        context = self.create(SignalContext, source, imprint)
        self.signal_contexts.append(context)
        return context

    @rpc(abi.PD_SUBMIT, "cap", "int")
    def submit(self, context: KernelObject, count: int) -> None:
        if not isinstance(context, SignalContext):
            raise ComponentError(abi.E_INVALID_CAP)
        context.submit(max(count, 1))

    @rpc(abi.PD_ALLOC_RPC_CAP, "cap")
    def alloc_rpc_cap(self, ep: KernelObject) -> Gate:
        from .cpu import Thread
        if not isinstance(ep, Thread) or ep.pd is not self:
            raise ComponentError(abi.E_INVALID_CAP)
        gate = self.create(Gate, ep)
        self.gates.append(gate)
        return gate

    @rpc(abi.PD_RAM_QUOTA)
    def ram_quota_info(self) -> tuple[int, int]:
        return self.ram_quota, self.ram_used

    @rpc(abi.PD_CAP_QUOTA)
    def cap_quota_info(self) -> tuple[int, int]:
        return self.cap_quota, self.cap_used

    def region_maps(self) -> list[RegionMap]:
        return [o for o in self.objects if isinstance(o, RegionMap) and not o.destroyed]

    # --- memory as the CPU sees it ----------------------------------------

    def map(self, va: int, attachment: Attachment) -> None:
        m = Mapping(va, attachment.size, attachment)
        ds = attachment.dataspace
        if attachment.writable and ds.ds_kind is DataspaceKind.RAM:
            unit = self.tracking_unit
            offset, end = attachment.offset, attachment.offset + attachment.size
            while offset < end:
                chunk_end = min(end, (offset // unit + 1) * unit)
                m.units[offset // unit] = (va + offset - attachment.offset, chunk_end - offset)
                offset = chunk_end
            for index, (chunk_va, size) in m.units.items():
                # A dataspace under tracking stays write-protected where clean.
                clean = ds.dirty_units is not None and index not in ds.dirty_units
                perms = m.perms & ~UC_PROT_WRITE if clean else m.perms
                self.uc.mem_map_ptr(chunk_va, size, perms, ds.address + chunk_va - va
                                    + attachment.offset)
        else:
            self.uc.mem_map_ptr(va, m.size, m.perms, ds.address + attachment.offset)
        i = bisect.bisect(self._mapping_starts, va)
        self._mappings.insert(i, m)
        self._mapping_starts.insert(i, va)

    def unmap(self, va: int, size: int) -> None:
        i = bisect.bisect_left(self._mapping_starts, va)
        if i < len(self._mappings) and self._mappings[i].va == va:
            m = self._mappings[i]
            del self._mappings[i], self._mapping_starts[i]
            for chunk_va, chunk_size in m.units.values() or [(va, m.size)]:
                self.uc.mem_unmap(chunk_va, chunk_size)

    def mapping_at(self, va: int) -> Mapping | None:
        i = bisect.bisect(self._mapping_starts, va) - 1
        if i >= 0:
            m = self._mappings[i]
            if va < m.va + m.size:
                return m
        return None

    def read(self, va: int, length: int) -> bytes:
        try:
            return bytes(self.uc.mem_read(va, length))
        except Exception as error:  # unicorn's UcError: unmapped
            raise ComponentError(abi.E_INVALID_ARG, f"bad address {va:#x}") from error

    def write(self, va: int, data: bytes) -> None:
        """The CR component's write into child memory: only ever into RAM the
        child may write itself, never into a ROM or a read-only mapping
        (a ROM dataspace is shared by every child of the board)."""
        if not self.is_writable_ram(va, len(data)):
            raise ComponentError(abi.E_DENIED, f"{va:#x}..{va + len(data):#x} is not writable "
                                               f"RAM of {self.label}")
        done = 0
        while done < len(data):
            m = self.mapping_at(va + done)
            assert m is not None
            n = min(len(data) - done, m.va + m.size - (va + done))
            m.attachment.dataspace.write(m.attachment.offset + va + done - m.va,
                                         data[done:done + n])
            done += n

    def is_writable_ram(self, va: int, length: int) -> bool:
        """Whether all of [va, va + length) is RAM the child may write."""
        end = va + length
        while va < end:
            m = self.mapping_at(va)
            if m is None or not _writable_ram(m):
                return False
            va = m.va + m.size
        return True

    def read_string(self, va: int) -> str:
        out = bytearray()
        while len(out) < STRING_LIMIT:
            byte = self.read(va + len(out), 1)
            if byte == b"\0":
                break
            out += byte
        return out.decode("utf-8", "replace")

    def load_registers(self, values: list[int]) -> None:
        # cpsr first: it selects the register bank the others land in.
        self.uc.reg_write(arm.UC_ARM_REG_CPSR, values[CPSR])
        self.uc.reg_write_batch(list(zip(REGISTERS[:CPSR], values[:CPSR])))

    def save_registers(self) -> list[int]:
        return list(self.uc.reg_read_batch(REGISTERS))

    # --- dirty tracking ---------------------------------------------------

    def start_dirty_tracking(self) -> None:
        """Write-protects what was written since the last call (everything,
        the first time); the next first write to each unit is recorded."""
        for m in self._mappings:
            ds = m.attachment.dataspace
            if not m.tracked:
                continue
            units = m.units if ds.dirty_units is None else ds.dirty_units & m.units.keys()
            for index in units:
                chunk_va, size = m.units[index]
                self.uc.mem_protect(chunk_va, size, m.perms & ~UC_PROT_WRITE)
        for ds in self.dataspaces:
            ds.dirty_units = set()

    def _on_write_protected(self, uc: Uc, access: int, address: int, size: int, value: int,
                            user_data: object) -> bool:
        first = self.mapping_at(address)
        last = self.mapping_at(address + size - 1)
        if first is None or last is None or not (first.tracked and last.tracked):
            return False            # a real protection fault
        for m, va in ((first, address), (last, address + size - 1)):
            ds = m.attachment.dataspace
            index = (m.attachment.offset + va - m.va) // self.tracking_unit
            if ds.dirty_units is not None:
                ds.dirty_units.add(index)
            chunk_va, chunk_size = m.units[index]
            uc.mem_protect(chunk_va, chunk_size, m.perms)
        # Unicorn 2.1 drops the faulting store when the hook re-enables
        # writing; doing the store here makes it exact.
        uc.mem_write(address, (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little"))
        return True

    # --- teardown ----------------------------------------------------------

    def destroy(self) -> None:
        for obj in reversed(self.objects):
            obj.destroy()
        self.objects.clear()
        self.dataspaces.clear()
        self._mappings.clear()
        self._mapping_starts.clear()
        super().destroy()
        self.uc = None  # type: ignore[assignment]  # frees the translation buffer
