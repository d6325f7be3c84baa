"""A child of the CR component: its PD, CPU session, parent object and the
sessions it opened, as the CR component records them ("online storage").

As Genode's ``Child``, it is created with the dataspace of its ELF image: a
valid one is loaded and its initial thread started (a fresh start), an
invalid one (None) leaves the PD empty and threadless for a restorer to fill
(rtcr's restore path)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import abi
from .capability import BadgeAllocator, ComponentError, RpcObject, rpc
from .cpu import CpuSession, Thread, ThreadState
from .elf import load_elf
from .memory import Dataspace
from .pd import ProtectionDomain
from .services import LogSession, RmSession, RomModule, RomSession, TimerSession, rom_dataspace

if TYPE_CHECKING:
    from .board import Board

__all__ = ["Child", "ChildState", "Parent", "SessionRecord", "BINARY_ROM_SESSION_ID",
           "CONFIG_ROM", "MAX_CONFIG_SIZE", "session_label"]

#: The parent opens the binary's ROM session itself; it has no client id.
BINARY_ROM_SESSION_ID = 0
#: The ROM module each child gets from its parent rather than from core: its
#: own configuration, as Genode's init serves a child's <config> node.
CONFIG_ROM = "config"
#: A config is a handful of settings; anything near this is a mistake.
MAX_CONFIG_SIZE = 64 << 10


class ChildState(enum.Enum):
    RUNNING = "running"
    PAUSED = "paused"
    EXITED = "exited"
    FAULTED = "faulted"


@dataclass
class SessionRecord:
    id: int
    service: str
    args: str
    session: RpcObject


@dataclass
class History:
    """What the last checkpoint left behind, for the next incremental one."""
    last_id: str = ""
    sequence: int = 0
    page_digests: dict[int, list[bytes]] = field(default_factory=dict)  # ds badge -> digests
    shipped: set[bytes] = field(default_factory=set)


class Parent(RpcObject):
    """The parent interface the CR component offers each child at slot 0x8."""

    kind = "parent"

    def __init__(self, badges: BadgeAllocator, child: Child):
        super().__init__(badges)
        self.child = child

    @rpc(abi.PARENT_SESSION, "int", "str", "str")
    def session(self, id: int, service: str, args: str) -> RpcObject:
        return self.child.session(id, service, args)

    @rpc(abi.PARENT_ANNOUNCE_CAP_MAP, "int", "int")
    def announce_cap_map(self, addr: int, entries: int) -> None:
        # The CR component reads the map at every checkpoint: it must be the
        # child's own writable RAM, and no larger than the ABI's map.
        size = abi.CAP_MAP_HEADER_SIZE + entries * abi.CAP_INDEX_SIZE
        if not 0 < entries <= abi.CAP_MAP_ENTRIES or not self.child.pd.is_writable_ram(addr, size):
            raise ComponentError(abi.E_INVALID_ARG, "a capability map must lie in writable RAM")
        self.child.cap_map_addr, self.child.cap_map_entries = addr, entries

    @rpc(abi.PARENT_EXIT, "int")
    def exit(self, code: int) -> None:
        self.child.exited(code)


class Child:
    """``elf`` is the dataspace of the image to load, or None, Genode's
    invalid dataspace capability: then nothing is loaded and no thread
    created. Raises ComponentError (or InvalidElf) with nothing left behind."""

    def __init__(self, board: Board, name: str, rom: RomModule, ram_quota: int, cap_quota: int,
                 config: bytes = b"", *, elf: Dataspace | None):
        self.board = board
        self.name = name
        self.rom = rom
        # Served by the parent, so neither in board.roms nor paid from the
        # child's quota; a child started without a config sees an empty one.
        self.config = RomModule(CONFIG_ROM, bytes(config))
        self.config_dataspace = rom_dataspace(board.kernel.badges, self.config)
        try:
            self.pd = ProtectionDomain(board.kernel, name, ram_quota, cap_quota)
        except BaseException:
            self.config_dataspace.destroy()
            raise
        self.sessions: dict[int, SessionRecord] = {}
        self.binary_rom = board.rom_dataspace(rom.name)
        self.cap_map_addr = 0
        self.cap_map_entries = 0
        self.parent_cap_addr = 0
        self.paused = False
        self.exit_code: int | None = None
        self.history = History()
        try:
            self.pd.cap_used += 1   # the PD session itself
            self.parent = self.pd.create(Parent, self)
            self.pd.cap_space.install(abi.kcap(abi.CAP_PARENT_INDEX), self.parent)
            self.cpu = self.pd.create(CpuSession, board.kernel, self.pd)
            self.sessions[abi.SESSION_ID_PD] = SessionRecord(abi.SESSION_ID_PD, "PD", "", self.pd)
            self.sessions[abi.SESSION_ID_CPU] = SessionRecord(abi.SESSION_ID_CPU, "CPU", "",
                                                              self.cpu)
            if elf is not None:
                self._load(elf)
        except BaseException:
            self.destroy()
            raise

    def _load(self, elf: Dataspace) -> None:
        """Genode's Child::Process: the ELF image, then the initial thread with
        its stack, started at the entry with its own badge in r0."""
        pd = self.pd
        image = load_elf(pd, elf, self.parent.badge)
        self.parent_cap_addr = image.parent_cap_addr
        main = self.cpu.create_thread(pd, self.name)
        pd.cap_space.install(abi.kcap(abi.CAP_MAIN_THREAD_INDEX), main)
        stack = pd.alloc_ram(abi.STACK_SIZE)
        pd.stack_area().attach(stack, 0, writable=True)
        main.start(image.entry, abi.STACK_AREA_BASE + abi.STACK_SIZE, main.badge)

    # --- sessions the child asks its parent for ----------------------------------

    def session(self, id: int, service: str, args: str) -> RpcObject:
        known = self.sessions.get(id)
        if known is not None:
            # Requesting an open session again yields the same capability.
            if known.service != service:
                raise ComponentError(abi.E_DENIED, f"session id {id} is a {known.service} session")
            return known.session
        session = self.open_session(service, args)
        self.sessions[id] = SessionRecord(id, service, args, session)
        return session

    def open_session(self, service: str, args: str, *, elapsed_us: int = 0) -> RpcObject:
        board, pd = self.board, self.pd
        if service == "LOG":
            return pd.create(LogSession, self.name, board.log_line)
        if service == "Timer":
            return pd.create(TimerSession, board.kernel, elapsed_us)
        if service == "RM":
            return pd.create(RmSession, pd)
        if service == "ROM":
            return self.open_rom_session(session_label(args))
        raise ComponentError(abi.E_SERVICE_DENIED, f"service {service!r} is not offered")

    def open_rom_session(self, module: str) -> RomSession:
        """A ROM session for ``module``: the parent serves "config" itself,
        before asking core's ROM service for the board's module."""
        if module == CONFIG_ROM:
            rom = self.config
        else:
            rom = self.board.roms.get(module)
            if rom is None:     # what the child sees; the board carries on
                raise ComponentError(abi.E_SERVICE_DENIED, f"no ROM module {module!r}")
        return self.pd.create(RomSession, rom, self.rom_dataspace(rom.name))

    # --- life cycle ----------------------------------------------------------------

    @property
    def threads(self) -> list[Thread]:
        return self.cpu.threads()

    @property
    def state(self) -> ChildState:
        if self.exit_code is not None:
            return ChildState.EXITED
        if any(t.state is ThreadState.FAULTED for t in self.threads):
            return ChildState.FAULTED
        return ChildState.PAUSED if self.paused else ChildState.RUNNING

    def pause(self) -> None:
        self.paused = True
        for thread in self.threads:
            thread.pause()

    def resume(self) -> None:
        self.paused = False
        for thread in self.threads:
            thread.resume()

    def exited(self, code: int) -> None:
        self.exit_code = code
        for thread in self.threads:
            thread.release()
        self.board.log_line(self.name, f"[cr] {self.name} exited with code {code}")

    def rom_dataspace(self, module: str) -> Dataspace:
        """The dataspace a ROM session of this child for ``module`` hands out."""
        if module == CONFIG_ROM:
            return self.config_dataspace
        return self.board.rom_dataspace(module)

    def destroy(self) -> None:
        self.pd.destroy()
        self.config_dataspace.destroy()


def session_label(args: str) -> str:
    """The ``label`` of a session's argument string (the module, for ROM)."""
    for part in args.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "label":
            return value.strip().strip('"')
    return args.strip()
