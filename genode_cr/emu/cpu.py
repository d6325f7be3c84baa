"""The CPU session and its threads, with Genode's ARM Cpu_state."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import abi
from .capability import BadgeAllocator, ComponentError, KernelObject, RpcObject, rpc

if TYPE_CHECKING:
    from .kernel import Kernel
    from .pd import ProtectionDomain

__all__ = ["Blocking", "CpuSession", "CpuState", "Thread", "ThreadState", "USER_MODE_CPSR"]

USER_MODE_CPSR = 0x10
THUMB = 1 << 5          # cpsr.T: the thread executes Thumb code
PC, CPSR = 15, 16


class ThreadState(enum.Enum):
    CREATED = "created"
    READY = "ready"
    BLOCKED = "blocked"
    EXITED = "exited"
    FAULTED = "faulted"


class Blocking(enum.Enum):
    NONE = 0
    IRQ_RECEIVE = 1
    REPLY_WAIT = 2
    CALL = 3


class CpuException(enum.IntEnum):
    """Genode's Cpu_state::Cpu_exception on ARM."""
    NONE = 0
    RESET = 1
    UNDEFINED_INSTRUCTION = 2
    SUPERVISOR_CALL = 3
    PREFETCH_ABORT = 4
    DATA_ABORT = 5


@dataclass
class CpuState:
    r: list[int] = field(default_factory=lambda: [0] * 13)
    sp: int = 0
    lr: int = 0
    ip: int = 0
    cpsr: int = USER_MODE_CPSR
    cpu_exception: int = 0

    @classmethod
    def from_registers(cls, regs: list[int], cpu_exception: int = 0) -> CpuState:
        return cls(list(regs[:13]), regs[13], regs[14], regs[15], regs[16], cpu_exception)

    def registers(self) -> list[int]:
        return [*self.r, self.sp, self.lr, self.ip, self.cpsr]


class Thread(RpcObject):
    kind = "thread"

    def __init__(self, badges: BadgeAllocator, kernel: Kernel, pd: ProtectionDomain, name: str):
        super().__init__(badges)
        self.kernel = kernel
        self.pd = pd
        self.name = name
        self.regs = CpuState().registers()
        self.state = ThreadState.CREATED
        self.blocking = Blocking.NONE
        self.blocked_on: KernelObject | Thread | None = None
        self.paused = False
        self.cpu_exception = 0
        self.reply_to: Thread | None = None        # the caller we owe a reply
        self.callers: list[Thread] = []            # clients queued on our gates
        self.call_gate: KernelObject | None = None # the gate a client called
        # A system call handed this thread a badge (r1 label, r4 received
        # capability) and the thread has not entered the kernel since.
        self.in_handoff = False
        pd.threads.append(self)
        kernel.threads.append(self)

    @property
    def started(self) -> bool:
        return self.state is not ThreadState.CREATED

    @property
    def runnable(self) -> bool:
        return self.state is ThreadState.READY and not self.paused

    # --- Cpu_thread interface -------------------------------------------------

    @rpc(abi.THREAD_START, "int", "int", "int")
    def start(self, ip: int, sp: int, arg0: int = 0) -> None:
        if self.started:
            raise ComponentError(abi.E_DENIED, f"thread {self.name!r} already started")
        # An odd ip is a Thumb entry point, as for ARM's interworking branches.
        if ip & 1:
            self.regs[CPSR] |= THUMB
        self.regs[PC], self.regs[13], self.regs[0] = ip & ~1, sp, arg0
        self.state = ThreadState.READY

    @rpc(abi.THREAD_PAUSE)
    def pause(self) -> None:
        self.paused = True

    @rpc(abi.THREAD_RESUME)
    def resume(self) -> None:
        self.paused = False

    def get_state(self) -> CpuState:
        return CpuState.from_registers(self.regs, self.cpu_exception)

    def set_state(self, state: CpuState) -> None:
        """Fiasco's ex_all_regs: every user register, not just ip and sp."""
        self.regs = state.registers()
        self.cpu_exception = state.cpu_exception

    def release(self) -> None:
        """Takes the thread off the kernel; used by kill and teardown."""
        self.kernel.forget(self)
        self.state = ThreadState.EXITED

    def destroy(self) -> None:
        self.release()
        super().destroy()


class CpuSession(RpcObject):
    kind = "cpu"

    def __init__(self, badges: BadgeAllocator, kernel: Kernel, pd: ProtectionDomain):
        super().__init__(badges)
        self.kernel = kernel
        self.pd = pd

    @rpc(abi.CPU_CREATE_THREAD, "cap", "str")
    def create_thread(self, pd: KernelObject, name: str) -> Thread:
        if pd is not self.pd:
            raise ComponentError(abi.E_INVALID_CAP, "threads live in the session's own PD")
        return self.pd.create(Thread, self.kernel, self.pd, name)

    @rpc(abi.CPU_KILL_THREAD, "cap")
    def kill_thread(self, thread: KernelObject) -> None:
        if not isinstance(thread, Thread) or thread.pd is not self.pd:
            raise ComponentError(abi.E_INVALID_CAP)
        thread.release()

    def threads(self) -> list[Thread]:
        return [t for t in self.pd.threads if not t.destroyed]
