"""The kernel of the emulated board: time, scheduling, system calls and IPC.

Board time is simulated: it advances only inside ``run``, by the CPU time
threads consume and, when every thread is blocked, straight to the next timer
deadline. A time slice is at most ``quantum`` instructions; one that runs out
costs its instructions at a fixed rate, one that ends in a system call is
charged a fixed small cost (Unicorn does not tell how many instructions ran).
That makes runs reproducible and fast while keeping the order of events the
board would have.

Blocking system calls are restartable as on Fiasco.OC: a thread that blocks
has its ip rewound to the ``svc``; waking it completes the call (results in
registers, ip past the ``svc``). A thread checkpointed while blocked
therefore simply issues the call again after a restore.

Threads run in the instruction set their cpsr names: libgcc's division
helpers are Thumb-2 even in our ARM ROMs, and a thread preempted there must
resume as Thumb code.

A system call that returns a badge (the label of an RPC call in r1, the badge
of a received capability in r4) puts the thread "in hand-off" until its next
kernel entry: until then the badge lives only in its registers, where no
restore can translate it. ``settle`` runs such threads to that entry before a
capture (see docs/board.md, "Badges in hand-off").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from unicorn import UcError
from unicorn import arm_const as arm

from . import abi
from .capability import BadgeAllocator, ComponentError, RpcObject
from .cpu import Blocking, CpuException, Thread, ThreadState
from .signals import Gate, Irq

if TYPE_CHECKING:
    from unicorn import Uc

    from .pd import ProtectionDomain
    from .services import TimerSession

__all__ = ["Kernel", "NS_PER_INSTRUCTION", "QUANTUM_INSTRUCTIONS", "SETTLE_BUDGET",
           "SETTLE_ROUNDS"]

QUANTUM_INSTRUCTIONS = 100_000
NS_PER_INSTRUCTION = 10          # a 100 MIPS core: the default slice is 1 ms
SYSCALL_US = 2
#: Instructions a thread in hand-off may run, per attempt, to reach the kernel:
#: 200 ms of board time. A component may compute long after a call before its
#: next one (kvstore sums or fills a 4 MiB table: about 5 million instructions),
#: and a budget that does not cover that refuses live moves of busy components.
SETTLE_BUDGET = 20_000_000
#: Attempts per capture: a thread that waits for a lock another thread holds
#: needs the holder to run first, then one more attempt.
SETTLE_ROUNDS = 8
STOP_ADDRESS = 0xFFFFFFF0        # never executed: slices end by count or by us
EXCP_SWI = 2
PC, CPSR = 15, 16
THUMB = 1 << 5                   # cpsr.T
R = [getattr(arm, f"UC_ARM_REG_R{i}") for i in range(8)]


def _svc_size(regs: list[int]) -> int:
    """Bytes of the svc a thread in this state executes (ARM 4, Thumb 2)."""
    return 2 if regs[CPSR] & THUMB else 4


class Kernel:
    def __init__(self, name: str, *, tracking_unit_pages: int,
                 fault_sink: Callable[[Thread, str], None] | None = None,
                 quantum: int = QUANTUM_INSTRUCTIONS, settle_budget: int = SETTLE_BUDGET):
        self.badges = BadgeAllocator(seed=f"board:{name}")
        self.tracking_unit_pages = tracking_unit_pages
        self.now_us = 0
        self._ns = 0                 # board time below one microsecond, carried
        self.quantum = quantum
        self.settle_budget = settle_budget
        self.threads: list[Thread] = []
        self.timers: list[TimerSession] = []
        self.current: Thread | None = None
        self._fault_sink = fault_sink or (lambda thread, message: None)
        self._rewind = False
        self._settling = False
        self._settled_at: int | None = None   # the system call a settling run stopped at

    @property
    def quantum(self) -> int:
        """Instructions per time slice; may be changed between runs."""
        return self._quantum

    @quantum.setter
    def quantum(self, instructions: int) -> None:
        if not isinstance(instructions, int) or instructions < 1:
            raise ValueError(f"a time slice needs at least one instruction, not {instructions!r}")
        self._quantum = instructions

    @property
    def settle_budget(self) -> int:
        return self._settle_budget

    @settle_budget.setter
    def settle_budget(self, instructions: int) -> None:
        if not isinstance(instructions, int) or instructions < 1:
            raise ValueError(f"a settle budget needs at least one instruction, not "
                             f"{instructions!r}")
        self._settle_budget = instructions

    def _charge(self, instructions: int) -> None:
        # Kept in nanoseconds so that slices shorter than a microsecond add up.
        self._ns += instructions * NS_PER_INSTRUCTION
        self.now_us += self._ns // 1000
        self._ns %= 1000

    # --- time and scheduling ------------------------------------------------

    def run(self, seconds: float) -> None:
        end = self.now_us + int(seconds * 1_000_000)
        while True:
            self._fire_timers()
            ready = [t for t in self.threads if t.runnable]
            if not ready:
                deadline = self._next_deadline()
                if deadline is None or deadline > end:
                    self.now_us = max(self.now_us, end)
                    return
                self.now_us = max(self.now_us, deadline)
                continue
            if self.now_us >= end:
                return
            for thread in ready:
                if thread.runnable:
                    self._run_slice(thread)

    def _run_slice(self, thread: Thread) -> None:
        if not self._execute(thread, self.quantum):
            return
        if thread.state is ThreadState.READY and not self._rewind and not thread.paused:
            self._charge(self.quantum)
            return
        if self._rewind:
            thread.regs[PC] -= _svc_size(thread.regs)
        self.now_us += SYSCALL_US

    def _execute(self, thread: Thread, count: int) -> bool:
        """Runs ``thread`` for at most ``count`` instructions; False if it faulted."""
        pd = thread.pd
        self.current, self._rewind = thread, False
        pd.load_registers(thread.regs)
        # Unicorn takes the instruction set from bit 0 of the start address,
        # not from the cpsr just loaded.
        start = thread.regs[PC] | (1 if thread.regs[CPSR] & THUMB else 0)
        try:
            pd.uc.emu_start(start, STOP_ADDRESS, count=count)
        except UcError as error:
            thread.regs = pd.save_registers()
            self._fault(thread, error)
            self.now_us += SYSCALL_US
            return False
        except Exception as error:       # noqa: BLE001 - see below
            # A system call this kernel could not complete (a fault of the
            # emulator itself, raised out of a hook) costs that thread, as a
            # microkernel kills what it cannot serve; the board, its other
            # components and its server go on, and the [core] line says why.
            thread.regs = pd.save_registers()
            thread.cpu_exception = int(CpuException.UNDEFINED_INSTRUCTION)
            thread.state = ThreadState.FAULTED
            thread.in_handoff = False
            self._fault_sink(thread, f"thread {thread.name!r} stopped: the kernel failed to "
                                     f"serve it at ip={thread.regs[PC]:#x}: {error!r}")
            self.now_us += SYSCALL_US
            return False
        finally:
            self.current = None
        thread.regs = pd.save_registers()
        return True

    def _fault(self, thread: Thread, error: UcError) -> None:
        kind = CpuException.PREFETCH_ABORT if "FETCH" in str(error) else CpuException.DATA_ABORT
        if "EXCEPTION" in str(error) or "INSN_INVALID" in str(error):
            kind = CpuException.UNDEFINED_INSTRUCTION
        thread.cpu_exception = int(kind)
        thread.state = ThreadState.FAULTED
        thread.in_handoff = False
        self._fault_sink(thread, f"thread {thread.name!r} faulted at ip={thread.regs[PC]:#x}: "
                                 f"{kind.name.lower()} ({error})")

    def _fire_timers(self) -> None:
        for timer in list(self.timers):
            if timer.deadline_us is not None and timer.deadline_us <= self.now_us:
                timer.fire()

    def _next_deadline(self) -> int | None:
        deadlines = [t.deadline_us for t in self.timers if t.deadline_us is not None]
        return min(deadlines) if deadlines else None

    def forget(self, thread: Thread) -> None:
        if thread in self.threads:
            self.threads.remove(thread)
        for other in self.threads:
            if other.reply_to is thread:
                other.reply_to = None
            if thread in other.callers:
                other.callers.remove(thread)

    def forget_timer(self, timer: TimerSession) -> None:
        if timer in self.timers:
            self.timers.remove(timer)

    # --- blocking -----------------------------------------------------------

    def _block(self, uc: Uc, thread: Thread, blocking: Blocking, on: object) -> None:
        thread.state = ThreadState.BLOCKED
        thread.blocking = blocking
        thread.blocked_on = on  # type: ignore[assignment]
        self._rewind = True
        uc.emu_stop()

    def wake(self, thread: Thread, results: list[int]) -> None:
        """Completes ``thread``'s blocking call with ``results`` in r0..rN."""
        if thread.state is not ThreadState.BLOCKED:
            return
        thread.regs[: len(results)] = results
        thread.regs[PC] += _svc_size(thread.regs)
        thread.state = ThreadState.READY
        thread.blocking = Blocking.NONE
        thread.blocked_on = None
        thread.call_gate = None

    # --- badges in hand-off ------------------------------------------------------

    def settle(self, threads: list[Thread]) -> list[Thread]:
        """Brings every thread of ``threads`` that is in hand-off to its next
        kernel entry, paused or not, and stops it there without executing
        that system call: its pc is back at the ``svc``, exactly as if the
        time slice had ended just before it. So the delivered badge has gone
        where the component keeps it (its capability map) and a capture
        holds no badge only a register knows.

        A thread in hand-off that yields is waiting for a lock another thread
        of its component holds (the runtime's capability-map lock); those
        others are then run to their next kernel entry too, and the waiter
        gets another attempt. Each run may take ``settle_budget``
        instructions, charged to board time like any slice. Returns the
        threads still in hand-off after ``SETTLE_ROUNDS`` attempts (empty if
        all settled); those have moved on, but nothing was lost.
        """
        for _ in range(SETTLE_ROUNDS):
            waiting = [t for t in threads if t.in_handoff and t.state is ThreadState.READY]
            if not waiting:
                return []
            for thread in waiting:
                if self._settle_run(thread) != abi.SYS_YIELD:
                    continue
                for other in threads:
                    if (other is not thread and not other.in_handoff
                            and other.state is ThreadState.READY
                            and not self._at_kernel_entry(other)):
                        self._settle_run(other)
        return [t for t in threads if t.in_handoff and t.state is ThreadState.READY]

    def _settle_run(self, thread: Thread) -> int | None:
        """One settling run; the system call it stopped at, or None."""
        self._settling, self._settled_at = True, None
        try:
            executed = self._execute(thread, self.settle_budget)
        finally:
            self._settling = False
        if not executed or thread.state is ThreadState.FAULTED:
            return None                     # nothing is in hand-off any more
        if self._settled_at is None:
            self._charge(self.settle_budget)
            return None
        if self._rewind:
            thread.regs[PC] -= _svc_size(thread.regs)
        self.now_us += SYSCALL_US
        return self._settled_at

    def _stop_at_entry(self, uc: Uc, thread: Thread) -> None:
        number = self._settled_at = uc.reg_read(arm.UC_ARM_REG_R7)
        uc.emu_stop()
        if number == abi.SYS_YIELD and thread.in_handoff:
            return    # a yield has no effect but to give way: it counts as done
        thread.in_handoff = False
        self._rewind = True

    @staticmethod
    def _at_kernel_entry(thread: Thread) -> bool:
        """Is the next instruction the thread executes an ``svc``?"""
        size = _svc_size(thread.regs)
        try:
            code = int.from_bytes(thread.pd.read(thread.regs[PC], size), "little")
        except ComponentError:
            return False
        if size == 2:
            return code >> 8 == 0xDF
        return (code >> 24) & 0xF == 0xF and code >> 28 != 0xF

    # --- system calls --------------------------------------------------------

    def on_exception(self, uc: Uc, intno: int, pd: ProtectionDomain) -> None:
        thread = self.current
        assert thread is not None and thread.pd is pd
        if intno == EXCP_SWI and self._settling:
            self._stop_at_entry(uc, thread)
            return
        thread.in_handoff = False            # the thread is back in the kernel
        if intno != EXCP_SWI:
            thread.cpu_exception = int(CpuException.UNDEFINED_INSTRUCTION)
            thread.state = ThreadState.FAULTED
            pc = uc.reg_read(arm.UC_ARM_REG_PC) - (
                2 if uc.reg_read(arm.UC_ARM_REG_CPSR) & THUMB else 4)
            self._fault_sink(thread, f"thread {thread.name!r}: cpu exception {intno} at "
                                     f"ip={pc:#x}")
            uc.emu_stop()
            return
        number = uc.reg_read(arm.UC_ARM_REG_R7)
        handler = self._syscalls.get(number)
        if handler is None:
            uc.reg_write(R[0], abi.E_INVALID_OPCODE)
            return
        handler(self, uc, thread)
        if not thread.runnable and not self._rewind:
            uc.emu_stop()

    def _sys_call(self, uc: Uc, thread: Thread) -> None:
        regs = uc.reg_read_batch(R[:7])
        pd = thread.pd
        target = pd.cap_space.lookup(regs[0])
        if isinstance(target, Gate):
            self._ipc_call(uc, thread, target)
            return
        if not isinstance(target, RpcObject):
            uc.reg_write(R[0], abi.E_INVALID_CAP if target is None else abi.E_INVALID_OPCODE)
            return
        reply = target.dispatch(pd, regs[1], list(regs[2:6]))
        words = list(reply.words) + [0] * (3 - len(reply.words))
        badge = 0
        if reply.err == abi.E_OK and reply.cap is not None:
            try:
                pd.cap_space.install(regs[6], reply.cap)
                badge = reply.cap.badge
                thread.in_handoff = True
            except ComponentError as error:
                reply.err = error.code
        uc.reg_write_batch([(R[0], reply.err), (R[1], words[0]), (R[2], words[1]),
                            (R[3], words[2]), (R[4], badge)])

    def _ipc_call(self, uc: Uc, client: Thread, gate: Gate) -> None:
        server = gate.ep
        if server.destroyed or server.state in (ThreadState.EXITED, ThreadState.FAULTED):
            uc.reg_write(R[0], abi.E_INVALID_CAP)
            return
        client.call_gate = gate
        self._block(uc, client, Blocking.CALL, server)
        if server.blocking is Blocking.REPLY_WAIT and server.reply_to is None:
            self._deliver(client, server, registers_of=uc)
        else:
            server.callers.append(client)

    def _deliver(self, client: Thread, server: Thread, registers_of: Uc | None = None) -> None:
        """Hands the client's message to a server waiting in reply-and-wait."""
        args = (registers_of.reg_read_batch(R[1:6]) if registers_of is not None
                else client.regs[1:6])
        gate = client.call_gate
        assert gate is not None
        server.reply_to = client
        self.wake(server, [abi.E_OK, gate.badge, args[0], args[1], args[2], args[3]])
        server.in_handoff = True

    def _sys_reply_wait(self, uc: Uc, server: Thread) -> None:
        has_reply, reply_err, word0, word1 = uc.reg_read_batch(R[:4])
        client = server.reply_to
        if has_reply and client is not None:
            self.wake(client, [reply_err, word0, word1, 0])
        server.reply_to = None
        # The send phase is done; a restart must only repeat the receive.
        uc.reg_write(R[0], 0)
        while server.callers:
            caller = server.callers.pop(0)
            if caller.blocking is Blocking.CALL and not caller.destroyed:
                gate = caller.call_gate
                assert gate is not None
                server.reply_to = caller
                args = caller.regs[1:6]
                uc.reg_write_batch(list(zip(R[:6], [abi.E_OK, gate.badge, *args[:4]])))
                server.in_handoff = True
                return
        self._block(uc, server, Blocking.REPLY_WAIT, server)

    def _sys_irq_receive(self, uc: Uc, thread: Thread) -> None:
        irq = thread.pd.cap_space.lookup(uc.reg_read(R[0]))
        if not isinstance(irq, Irq):
            uc.reg_write(R[0], abi.E_INVALID_CAP)
        elif irq.attached is not thread:
            uc.reg_write(R[0], abi.E_NOT_ATTACHED)
        elif irq.pending:
            irq.pending = False
            uc.reg_write(R[0], abi.E_OK)
        else:
            self._block(uc, thread, Blocking.IRQ_RECEIVE, irq)

    def _sys_irq_attach(self, uc: Uc, thread: Thread) -> None:
        irq_cap, thread_cap = uc.reg_read_batch(R[:2])
        irq = thread.pd.cap_space.lookup(irq_cap)
        target = thread.pd.cap_space.lookup(thread_cap)
        if not isinstance(irq, Irq) or not isinstance(target, Thread):
            uc.reg_write(R[0], abi.E_INVALID_CAP)
            return
        irq.attach(target)
        uc.reg_write(R[0], abi.E_OK)

    def _sys_thread_exit(self, uc: Uc, thread: Thread) -> None:
        thread.state = ThreadState.EXITED

    def _sys_yield(self, uc: Uc, thread: Thread) -> None:
        uc.emu_stop()

    _syscalls: dict[int, Callable[[Kernel, Uc, Thread], None]] = {
        abi.SYS_CALL: _sys_call,
        abi.SYS_REPLY_WAIT: _sys_reply_wait,
        abi.SYS_IRQ_RECEIVE: _sys_irq_receive,
        abi.SYS_IRQ_ATTACH: _sys_irq_attach,
        abi.SYS_THREAD_EXIT: _sys_thread_exit,
        abi.SYS_YIELD: _sys_yield,
    }
