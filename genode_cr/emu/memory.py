"""Dataspaces and region maps.

A RAM dataspace is a page-granular buffer owned by the board; attaching it
maps that very buffer into a PD's Unicorn instance (``mem_map_ptr``), so the
CR component reads and fills dataspaces without going through the CPU, as
core does on hardware. A region map's own dataspace ("managed dataspace")
can be attached into the address space; its attachments then appear there.
"""

from __future__ import annotations

import ctypes
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import abi
from .capability import BadgeAllocator, ComponentError, RpcObject, rpc

if TYPE_CHECKING:
    from .pd import ProtectionDomain

__all__ = ["Attachment", "Dataspace", "DataspaceKind", "RegionMap", "page_align"]

PAGE = abi.PAGE_SIZE


def page_align(size: int) -> int:
    return (size + PAGE - 1) & ~(PAGE - 1)


class DataspaceKind(enum.Enum):
    RAM = "ram"
    ROM = "rom"
    MANAGED = "managed"


class Dataspace(RpcObject):
    kind = "dataspace"

    def __init__(self, badges: BadgeAllocator, size: int, kind: DataspaceKind = DataspaceKind.RAM,
                 *, content: bytes = b"", region_map: RegionMap | None = None):
        super().__init__(badges)
        self.size = page_align(max(size, 1))
        self.ds_kind = kind
        self.region_map = region_map
        self._buffer = None
        self.address = 0
        if kind is not DataspaceKind.MANAGED:
            self._buffer = (ctypes.c_char * self.size)()
            self.address = ctypes.addressof(self._buffer)
            if content:
                ctypes.memmove(self.address, content, len(content))
        # Units written since dirty tracking last started; None: not tracked,
        # every unit counts as written.
        self.dirty_units: set[int] | None = None

    def read(self, offset: int, length: int) -> bytes:
        self._check(offset, length)
        return ctypes.string_at(self.address + offset, length)

    def write(self, offset: int, data: bytes) -> None:
        if self.ds_kind is DataspaceKind.ROM:
            # One ROM dataspace per module serves every child of the board.
            raise ComponentError(abi.E_DENIED, "ROM dataspaces are read-only")
        self._check(offset, len(data))
        ctypes.memmove(self.address + offset, data, len(data))

    def view(self) -> memoryview:
        """Zero-copy access for hashing whole pages."""
        if self._buffer is None:
            raise ComponentError(abi.E_INVALID_ARG, "managed dataspace has no content")
        return memoryview(self._buffer).cast("B")

    def _check(self, offset: int, length: int) -> None:
        if self._buffer is None or offset < 0 or offset + length > self.size:
            raise ComponentError(abi.E_INVALID_ARG, "dataspace access out of range")

    @rpc(abi.DS_SIZE)
    def size_of(self) -> int:
        return self.size

    def destroy(self) -> None:
        super().destroy()
        self._buffer = None


@dataclass
class Attachment:
    dataspace: Dataspace
    addr: int                 # within the region map
    size: int
    offset: int = 0           # within the dataspace
    writable: bool = False
    executable: bool = False


class RegionMap(RpcObject):
    """Genode's Region_map. ``base`` is where it appears in the PD's address
    space: 0 for the address space itself, None while not attached."""

    kind = "region_map"

    def __init__(self, badges: BadgeAllocator, pd: ProtectionDomain, size: int,
                 *, base: int | None = None, name: str = ""):
        super().__init__(badges)
        self.pd = pd
        self.size = size
        self.base = base
        self.name = name
        self.attachments: dict[int, Attachment] = {}
        self.managed = Dataspace(badges, size, DataspaceKind.MANAGED, region_map=self)

    def attach(self, ds: Dataspace, addr: int | None = None, size: int = 0, offset: int = 0,
               writable: bool = False, executable: bool = False) -> int:
        size = page_align(size or ds.size - offset)
        if offset % PAGE or offset + size > ds.size:
            raise ComponentError(abi.E_INVALID_ARG, "attachment exceeds dataspace")
        if ds.ds_kind is DataspaceKind.ROM and writable:
            raise ComponentError(abi.E_DENIED, "ROM dataspaces are read-only")
        if addr is None:
            addr = self._free_range(size)
        if addr % PAGE or addr + size > self.size or self._overlaps(addr, size):
            raise ComponentError(abi.E_REGION_CONFLICT, f"region conflict at {addr:#x}")
        if ds.ds_kind is DataspaceKind.MANAGED:
            inner = ds.region_map
            assert inner is not None
            if inner.base is not None or inner is self:
                raise ComponentError(abi.E_REGION_CONFLICT, "region map already attached")
        attachment = Attachment(ds, addr, size, offset, writable, executable)
        self.attachments[addr] = attachment
        if self.base is not None:
            self._map(attachment)
        return addr

    def detach(self, addr: int) -> None:
        attachment = self.attachments.pop(addr, None)
        if attachment is None:
            raise ComponentError(abi.E_INVALID_ARG, f"nothing attached at {addr:#x}")
        if self.base is not None:
            self._unmap(attachment)

    def _map(self, a: Attachment) -> None:
        assert self.base is not None
        if a.dataspace.ds_kind is DataspaceKind.MANAGED:
            inner = a.dataspace.region_map
            assert inner is not None
            inner.base = self.base + a.addr
            for nested in inner.attachments.values():
                inner._map(nested)
        else:
            self.pd.map(self.base + a.addr, a)

    def _unmap(self, a: Attachment) -> None:
        assert self.base is not None
        if a.dataspace.ds_kind is DataspaceKind.MANAGED:
            inner = a.dataspace.region_map
            assert inner is not None
            for nested in inner.attachments.values():
                inner._unmap(nested)
            inner.base = None
        else:
            self.pd.unmap(self.base + a.addr, a.size)

    def _overlaps(self, addr: int, size: int) -> bool:
        return any(addr < a.addr + a.size and a.addr < addr + size
                   for a in self.attachments.values())

    def _free_range(self, size: int) -> int:
        low, high = (abi.ATTACH_ANY_BASE, abi.ATTACH_ANY_END) if self.base == 0 else (0, self.size)
        addr = low
        for a in sorted(self.attachments.values(), key=lambda a: a.addr):
            if a.addr + a.size <= addr:
                continue
            if a.addr >= addr + size:
                break
            addr = page_align(a.addr + a.size)
        if addr + size > high:
            raise ComponentError(abi.E_REGION_CONFLICT, "no free range")
        return addr

    @rpc(abi.RM_ATTACH, "cap", "int", "int", "int")
    def rpc_attach(self, ds: Dataspace, local_addr: int, flags: int, size: int) -> int:
        if not isinstance(ds, Dataspace):
            raise ComponentError(abi.E_INVALID_CAP)
        addr = local_addr if flags & abi.ATTACH_USE_LOCAL_ADDR else None
        return self.attach(ds, addr, size, 0, bool(flags & abi.ATTACH_WRITABLE),
                           bool(flags & abi.ATTACH_EXECUTABLE))

    @rpc(abi.RM_DETACH, "int")
    def rpc_detach(self, addr: int) -> None:
        self.detach(addr)

    @rpc(abi.RM_DATASPACE)
    def dataspace(self) -> Dataspace:
        return self.managed

    def destroy(self) -> None:
        super().destroy()
        self.managed.destroy()
