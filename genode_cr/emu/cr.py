"""The checkpoint/restore (CR) component: parent of every movable component.

It starts children from ROM modules, pauses, resumes and kills them, takes
full or incremental checkpoints (live, or frozen), and restores checkpoint
chains through the invalid-dataspace path (see restore.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from ..checkpoint import Checkpoint
from ..errors import InsufficientQuota, NameInUse, RequestError, RomMissing, UnknownComponent
from ..model import ComponentInfo
from .capability import ComponentError
from .capture import capture
from .child import MAX_CONFIG_SIZE, Child, ChildState
from .elf import InvalidElf
from .restore import RestoreReport, Restorer, restore_chain

if TYPE_CHECKING:
    from .board import Board

__all__ = ["ComponentInfo", "CrComponent", "DEFAULT_CAP_QUOTA", "DEFAULT_RAM_QUOTA",
           "MAX_CONFIG_SIZE"]

DEFAULT_RAM_QUOTA = 16 << 20
DEFAULT_CAP_QUOTA = 300


class CrComponent:
    def __init__(self, board: Board):
        self.board = board
        self.children: dict[str, Child] = {}
        self.staged: list[Child] = []   # restores in progress hold their quota too

    def _child(self, name: str) -> Child:
        try:
            return self.children[name]
        except KeyError:
            raise UnknownComponent(f"no component named {name!r} on {self.board.name}") from None

    def start(self, name: str, rom: str | None = None, *, ram_quota: int = DEFAULT_RAM_QUOTA,
              cap_quota: int = DEFAULT_CAP_QUOTA, config: str | bytes = b"") -> ComponentInfo:
        """Starts ``name`` from ROM ``rom``; ``config`` becomes the content of
        the child's own "config" ROM module (text is stored as UTF-8)."""
        rom = rom or name
        if isinstance(config, str):
            config = config.encode()
        if len(config) > MAX_CONFIG_SIZE:
            raise RequestError(f"the config of {name} has {len(config)} bytes, more than "
                               f"{MAX_CONFIG_SIZE}")
        if name in self.children:
            raise NameInUse(f"a component named {name!r} already runs on {self.board.name}")
        module = self.board.roms.get(rom)
        if module is None:
            raise RomMissing(f"board {self.board.name} has no ROM {rom!r}")
        if ram_quota > self.board.free_ram or cap_quota > self.board.free_caps:
            raise InsufficientQuota(f"board {self.board.name} cannot give {name} {ram_quota} "
                                    f"bytes and {cap_quota} caps")
        try:
            child = Child(self.board, name, module, ram_quota, cap_quota, config,
                          elf=self.board.rom_dataspace(rom))
        except (ComponentError, InvalidElf) as error:
            raise RequestError(f"cannot start {name} from ROM {rom!r}: {error}") from error
        self.board.logs.pop(name, None)
        self.children[name] = child
        return self.info(name)

    def pause(self, name: str) -> None:
        self._child(name).pause()

    def resume(self, name: str) -> None:
        self._child(name).resume()

    def kill(self, name: str) -> None:
        self._child(name).destroy()
        del self.children[name]

    def info(self, name: str) -> ComponentInfo:
        child = self._child(name)
        pd = child.pd
        return ComponentInfo(child.name, child.rom.name, child.state.value, pd.ram_quota,
                             pd.ram_used, pd.cap_quota, pd.cap_used, len(child.threads))

    def components(self) -> list[ComponentInfo]:
        return [self.info(name) for name in sorted(self.children)]

    def checkpoint(self, name: str, since: Checkpoint | str | None = None,
                   freeze: bool = False) -> Checkpoint:
        child = self._child(name)
        if child.state in (ChildState.EXITED, ChildState.FAULTED):
            raise RequestError(f"{name} is {child.state.value}; nothing to checkpoint")
        since_id = since.id if isinstance(since, Checkpoint) else since
        return capture(self.board, child, since_id, freeze)

    def restore(self, checkpoints: Checkpoint | Iterable[Checkpoint], *, name: str | None = None,
                skip: Iterable[str] = ()) -> RestoreReport:
        """Restores a full checkpoint or a chain (full first or in any order).

        ``skip`` names restore steps to leave out; it exists so that tests can
        show that the components notice a restore that is wrong.
        """
        chain = [checkpoints] if isinstance(checkpoints, Checkpoint) else list(checkpoints)
        child, report = restore_chain(self.board, chain, name=name, skip=skip)
        self.adopt(child)
        return report

    def restorer(self, *, name: str | None = None) -> Restorer:
        """A restore that arrives in rounds; ``adopt`` its child after commit."""
        return Restorer(self.board, name=name)

    def adopt(self, child: Child) -> None:
        if child.name in self.children:
            child.destroy()
            raise NameInUse(f"a component named {child.name!r} already runs on {self.board.name}")
        # A new incarnation's log starts empty; a killed one's stayed readable until now.
        self.board.logs.pop(child.name, None)
        self.children[child.name] = child
