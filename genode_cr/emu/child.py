"""A child of the CR component: its PD, CPU session, parent object and the
sessions it opened, as the CR component records them ("online storage")."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import abi
from .capability import BadgeAllocator, ComponentError, RpcObject, rpc
from .cpu import CpuSession, Thread, ThreadState
from .memory import Dataspace
from .pd import ProtectionDomain
from .services import LogSession, RmSession, RomModule, RomSession, TimerSession, rom_dataspace

if TYPE_CHECKING:
    from .board import Board

__all__ = ["Child", "ChildState", "Parent", "SessionRecord", "BINARY_ROM_SESSION_ID",
           "CONFIG_ROM"]

#: The parent opens the binary's ROM session itself; it has no client id.
BINARY_ROM_SESSION_ID = 0
#: The ROM module each child gets from its parent rather than from core: its
#: own configuration, as Genode's init serves a child's <config> node.
CONFIG_ROM = "config"


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
        self.child.cap_map_addr, self.child.cap_map_entries = addr, entries

    @rpc(abi.PARENT_EXIT, "int")
    def exit(self, code: int) -> None:
        self.child.exited(code)


class Child:
    def __init__(self, board: Board, name: str, rom: RomModule, ram_quota: int, cap_quota: int,
                 config: bytes = b""):
        self.board = board
        self.name = name
        self.rom = rom
        # Served by the parent, so neither in board.roms nor paid from the
        # child's quota; a child started without a config sees an empty one.
        self.config = RomModule(CONFIG_ROM, bytes(config))
        self.config_dataspace = rom_dataspace(board.kernel.badges, self.config)
        self.pd = ProtectionDomain(board.kernel, name, ram_quota, cap_quota)
        self.pd.cap_used += 1   # the PD session itself
        self.parent = self.pd.create(Parent, self)
        self.pd.cap_space.install(abi.kcap(abi.CAP_PARENT_INDEX), self.parent)
        self.cpu = self.pd.create(CpuSession, board.kernel, self.pd)
        self.sessions: dict[int, SessionRecord] = {
            abi.SESSION_ID_PD: SessionRecord(abi.SESSION_ID_PD, "PD", "", self.pd),
            abi.SESSION_ID_CPU: SessionRecord(abi.SESSION_ID_CPU, "CPU", "", self.cpu),
        }
        self.binary_rom = board.rom_dataspace(rom.name)
        self.cap_map_addr = 0
        self.cap_map_entries = 0
        self.parent_cap_addr = 0
        self.paused = False
        self.exit_code: int | None = None
        self.history = History()

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
            # The parent serves "config" itself, before asking core's ROM service.
            label = _label(args)
            module = self.config if label == CONFIG_ROM else board.rom(label)
            return pd.create(RomSession, module, self.rom_dataspace(module.name))
        raise ComponentError(abi.E_SERVICE_DENIED, f"service {service!r} is not offered")

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


def _label(args: str) -> str:
    for part in args.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "label":
            return value.strip().strip('"')
    return args.strip()
