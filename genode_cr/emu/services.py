"""The services beyond PD and CPU: LOG, Timer, ROM and RM sessions.

A timer keeps its phase: what a checkpoint records is the time remaining to
the next timeout and the elapsed time the client has seen, so that a move
neither restarts the interval nor lets ``elapsed_ms`` run backwards.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from . import abi
from .capability import BadgeAllocator, ComponentError, KernelObject, RpcObject, rpc
from .memory import Dataspace, DataspaceKind, RegionMap
from .signals import SignalContext

if TYPE_CHECKING:
    from .kernel import Kernel
    from .pd import ProtectionDomain

__all__ = ["LogSession", "RmSession", "RomModule", "RomSession", "TimerSession"]

MIN_TIMEOUT_US = 10


class LogSession(RpcObject):
    kind = "log"

    def __init__(self, badges: BadgeAllocator, label: str, sink: Callable[[str, str], None]):
        super().__init__(badges)
        self.label = label
        self._sink = sink

    @rpc(abi.LOG_WRITE, "caller", "int", "int")
    def write(self, caller: ProtectionDomain, ptr: int, length: int) -> None:
        text = caller.read(ptr, min(length, 256)).decode("utf-8", "replace")
        self._sink(self.label, text.rstrip("\n"))


class TimerSession(RpcObject):
    kind = "timer"

    def __init__(self, badges: BadgeAllocator, kernel: Kernel, elapsed_us: int = 0):
        super().__init__(badges)
        self.kernel = kernel
        self._epoch_us = kernel.now_us - elapsed_us
        self.sigh_context: SignalContext | None = None
        self.deadline_us: int | None = None
        self.period_us = 0
        kernel.timers.append(self)

    def elapsed_us(self) -> int:
        return self.kernel.now_us - self._epoch_us

    def remaining_us(self) -> int | None:
        if self.deadline_us is None:
            return None
        return max(0, self.deadline_us - self.kernel.now_us)

    def arm(self, remaining_us: int, period_us: int = 0) -> None:
        self.deadline_us = self.kernel.now_us + max(remaining_us, MIN_TIMEOUT_US)
        self.period_us = period_us

    @rpc(abi.TIMER_TRIGGER_ONCE, "int")
    def trigger_once(self, us: int) -> None:
        self.arm(us)

    @rpc(abi.TIMER_TRIGGER_PERIODIC, "int")
    def trigger_periodic(self, us: int) -> None:
        if us == 0:
            self.deadline_us, self.period_us = None, 0
        else:
            self.arm(us, max(us, MIN_TIMEOUT_US))

    @rpc(abi.TIMER_SIGH, "cap")
    def sigh(self, context: KernelObject) -> None:
        if not isinstance(context, SignalContext):
            raise ComponentError(abi.E_INVALID_CAP)
        self.sigh_context = context

    @rpc(abi.TIMER_ELAPSED_MS)
    def elapsed_ms(self) -> tuple[int, int]:
        ms = self.elapsed_us() // 1000
        return ms & 0xFFFFFFFF, ms >> 32

    def fire(self) -> None:
        """Called by the kernel once ``deadline_us`` has passed."""
        assert self.deadline_us is not None
        if self.period_us:
            missed = (self.kernel.now_us - self.deadline_us) // self.period_us
            self.deadline_us += (missed + 1) * self.period_us
            count = missed + 1
        else:
            self.deadline_us = None
            count = 1
        if self.sigh_context is not None:
            self.sigh_context.submit(count)

    def destroy(self) -> None:
        super().destroy()
        self.kernel.forget_timer(self)


@dataclass(frozen=True)
class RomModule:
    name: str
    data: bytes

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.data).digest()


class RomSession(RpcObject):
    kind = "rom"

    def __init__(self, badges: BadgeAllocator, module: RomModule, dataspace: Dataspace):
        super().__init__(badges)
        self.module = module
        self._dataspace = dataspace

    @rpc(abi.ROM_DATASPACE)
    def dataspace(self) -> tuple[Dataspace, int]:
        return self._dataspace, len(self.module.data)


def rom_dataspace(badges: BadgeAllocator, module: RomModule) -> Dataspace:
    return Dataspace(badges, len(module.data), DataspaceKind.ROM, content=module.data)


class RmSession(RpcObject):
    kind = "rm"

    def __init__(self, badges: BadgeAllocator, pd: ProtectionDomain):
        super().__init__(badges)
        self.pd = pd
        self.region_maps: list[RegionMap] = []

    @rpc(abi.RM_SESSION_CREATE, "int")
    def create(self, size: int) -> RegionMap:
        if size == 0 or size % abi.PAGE_SIZE:
            raise ComponentError(abi.E_INVALID_ARG, "region map size must be page-aligned")
        region_map = self.pd.create(RegionMap, self.pd, size, name="rm session")
        self.region_maps.append(region_map)
        return region_map
