"""An emulated Genode/Fiasco.OC board: kernel, core services, ROM modules, the
CR component and the log of every component."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from .. import errors
from .cr import CrComponent
from .cpu import Thread
from .kernel import QUANTUM_INSTRUCTIONS, Kernel
from .memory import Dataspace
from .services import RomModule, rom_dataspace

__all__ = ["Board", "LogEntry", "default_rom_dir"]

ARCH = "arm32"
KERNEL = "foc"
#: Pages per dirty-tracking unit. Each unit of writable RAM is one Unicorn
#: region, and Unicorn's cost of adding a region grows with the number it
#: already holds; 16 KiB units keep an 8 MiB component at 512 regions, at the
#: price of carrying whole units when one word in them changed.
DEFAULT_TRACKING_UNIT_PAGES = 4


def default_rom_dir() -> Path:
    configured = os.environ.get("GENODE_CR_ROM_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "build" / "roms"


@dataclass(frozen=True)
class LogEntry:
    time_us: int
    text: str


class Board:
    """One board. Board time is simulated and advances only inside ``run``."""

    def __init__(self, name: str, *, rom_dir: str | Path | None = None,
                 roms: Mapping[str, bytes] | None = None, ram: int = 256 << 20, caps: int = 4096,
                 tracking_unit_pages: int = DEFAULT_TRACKING_UNIT_PAGES, arch: str = ARCH, kernel: str = KERNEL,
                 quantum: int = QUANTUM_INSTRUCTIONS):
        self.name = name
        self.arch = arch
        self.kernel_name = kernel
        self.ram = ram
        self.caps = caps
        # quantum: instructions per time slice (board.kernel.quantum may change it later).
        self.kernel = Kernel(name, tracking_unit_pages=tracking_unit_pages,
                             fault_sink=self._log_fault, quantum=quantum)
        self.roms: dict[str, RomModule] = {}
        if roms is None:
            directory = Path(rom_dir) if rom_dir is not None else default_rom_dir()
            if not directory.is_dir():
                raise errors.RomMissing(f"ROM directory {directory} does not exist (run `make roms`)")
            roms = {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}
        self._rom_dataspaces: dict[str, Dataspace] = {}
        for rom_name, data in roms.items():
            self.add_rom(rom_name, data)
        self.logs: dict[str, list[LogEntry]] = {}
        self.cr = CrComponent(self)

    # --- time -----------------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.kernel.now_us / 1e6

    def run(self, seconds: float) -> None:
        self.kernel.run(seconds)

    def run_until(self, predicate: Callable[[], bool], timeout: float, step: float = 0.01) -> float:
        """Runs until ``predicate()`` holds; returns the board time it took."""
        start = self.now
        while not predicate():
            if self.now - start >= timeout:
                raise TimeoutError(f"board {self.name}: condition not met after {timeout} s "
                                   "of board time")
            self.run(step)
        return self.now - start

    # --- ROMs, resources, logs ------------------------------------------------------

    def add_rom(self, name: str, data: bytes) -> RomModule:
        """Adds a ROM module; core's ROM service has a dataspace per module."""
        if name in self.roms:
            raise errors.RequestError(f"board {self.name} already has a ROM {name!r}")
        module = self.roms[name] = RomModule(name, data)
        self._rom_dataspaces[name] = rom_dataspace(self.kernel.badges, module)
        return module

    def rom(self, name: str) -> RomModule:
        try:
            return self.roms[name]
        except KeyError:
            raise errors.RomMissing(f"board {self.name} has no ROM {name!r}") from None

    def rom_dataspace(self, name: str) -> Dataspace:
        self.rom(name)
        return self._rom_dataspaces[name]

    def _holders(self) -> list:
        return [*self.cr.children.values(), *self.cr.staged]

    @property
    def free_ram(self) -> int:
        return self.ram - sum(c.pd.ram_quota for c in self._holders())

    @property
    def free_caps(self) -> int:
        return self.caps - sum(c.pd.cap_quota for c in self._holders())

    def info(self) -> dict:
        return {
            "name": self.name, "arch": self.arch, "kernel": self.kernel_name,
            "ram_total": self.ram, "ram_free": self.free_ram,
            "caps_total": self.caps, "caps_free": self.free_caps,
            "roms": {n: m.digest.hex() for n, m in sorted(self.roms.items())},
        }

    def log_line(self, label: str, text: str) -> None:
        self.logs.setdefault(label, []).append(LogEntry(self.kernel.now_us, text))

    def log(self, name: str) -> list[str]:
        return [e.text for e in self.logs.get(name, [])]

    def log_entries(self, name: str) -> list[LogEntry]:
        return list(self.logs.get(name, []))

    def _log_fault(self, thread: Thread, message: str) -> None:
        self.log_line(thread.pd.label, f"[core] {message}")
