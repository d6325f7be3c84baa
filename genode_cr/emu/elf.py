"""Loading a component's ELF image the way Genode's Child::Process does:
read-only segments are attached straight from the ROM dataspace, writable
ones are copied into fresh RAM dataspaces, and the raw parent capability is
written at the start of the first writable segment."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from . import abi
from .memory import Dataspace, page_align
from .pd import ProtectionDomain

__all__ = ["ElfImage", "InvalidElf", "load_elf"]

PF_X, PF_W = 1, 2
PAGE_MASK = abi.PAGE_SIZE - 1


class InvalidElf(ValueError):
    pass


@dataclass(frozen=True)
class ElfImage:
    entry: int
    parent_cap_addr: int


def load_elf(pd: ProtectionDomain, rom_ds: Dataspace, parent_badge: int) -> ElfImage:
    """Loads the image in ``rom_ds`` (a ROM dataspace, page-padded) into ``pd``."""
    try:
        elf = ELFFile(io.BytesIO(rom_ds.read(0, rom_ds.size)))
        if elf.get_machine_arch() != "ARM" or elf.elfclass != 32:
            raise InvalidElf(f"not an ARM32 image ({elf.get_machine_arch()}, {elf.elfclass}-bit)")
        segments = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        entry = elf.header["e_entry"]
    except ELFError as error:
        raise InvalidElf(str(error)) from error

    address_space = pd.address_space()
    parent_cap_addr = 0
    for segment in segments:
        vaddr, memsz, filesz = segment["p_vaddr"], segment["p_memsz"], segment["p_filesz"]
        base = vaddr & ~PAGE_MASK
        size = page_align(vaddr + memsz - base)
        flags = segment["p_flags"]
        if not flags & PF_W:
            offset = segment["p_offset"] & ~PAGE_MASK
            address_space.attach(rom_ds, base, size=min(size, rom_ds.size - offset),
                                 offset=offset, executable=bool(flags & PF_X))
            continue
        ds = pd.alloc_ram(size)
        ds.write(vaddr - base, segment.data()[:filesz])
        if not parent_cap_addr:
            parent_cap_addr = vaddr
            ds.write(vaddr - base, struct.pack("<II", abi.kcap(abi.CAP_PARENT_INDEX), parent_badge))
        address_space.attach(ds, base, writable=True, executable=bool(flags & PF_X))
    return ElfImage(entry, parent_cap_addr)
