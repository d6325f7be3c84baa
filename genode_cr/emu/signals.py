"""Signals and RPC gates as base-foc builds them on Fiasco.OC.

Core's signal source owns a kernel IRQ object, its "blocking semaphore". The
client fetches it (``request_semaphore``) and attaches it to its signal-
handler thread; that attachment is kernel-internal and survives in no
checkpoint of memory. Submitting a signal queues its context at the source
and triggers the IRQ; an IRQ triggered while nobody waits stays pending.

An RPC gate (``Pd_session::alloc_rpc_cap``) is bound to an entrypoint thread;
calls through it are delivered to that thread's reply-and-wait.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import abi
from .capability import BadgeAllocator, ComponentError, KernelObject, RpcObject, rpc

if TYPE_CHECKING:
    from .cpu import Thread
    from .kernel import Kernel

__all__ = ["Gate", "Irq", "SignalContext", "SignalSource"]


class Irq(KernelObject):
    kind = "irq"

    def __init__(self, badges: BadgeAllocator, kernel: Kernel):
        super().__init__(badges)
        self.kernel = kernel
        self.attached: Thread | None = None
        self.pending = False

    def attach(self, thread: Thread) -> None:
        self.attached = thread

    def trigger(self) -> None:
        thread = self.attached
        if thread is not None and thread.blocked_on is self:
            self.kernel.wake(thread, [abi.E_OK])
        else:
            self.pending = True


class SignalSource(RpcObject):
    kind = "signal_source"

    def __init__(self, badges: BadgeAllocator, kernel: Kernel):
        super().__init__(badges)
        self.semaphore = Irq(badges, kernel)
        self.queue: list[SignalContext] = []

    @rpc(abi.SIGSRC_REQUEST_SEMAPHORE)
    def request_semaphore(self) -> Irq:
        return self.semaphore

    @rpc(abi.SIGSRC_WAIT_FOR_SIGNAL)
    def wait_for_signal(self) -> tuple[int, int]:
        while self.queue:
            context = self.queue.pop(0)
            if context.pending and not context.destroyed:
                count, context.pending = context.pending, 0
                return context.imprint, count
        raise ComponentError(abi.E_NO_SIGNAL)

    def enqueue(self, context: SignalContext) -> None:
        if context not in self.queue:
            self.queue.append(context)
        self.semaphore.trigger()

    def destroy(self) -> None:
        super().destroy()
        self.semaphore.destroy()


class SignalContext(KernelObject):
    kind = "signal_context"

    def __init__(self, badges: BadgeAllocator, source: SignalSource, imprint: int):
        super().__init__(badges)
        self.source = source
        self.imprint = imprint
        self.pending = 0

    def submit(self, count: int = 1) -> None:
        if self.destroyed or self.source.destroyed:
            return
        self.pending += count
        self.source.enqueue(self)


class Gate(KernelObject):
    kind = "rpc_gate"

    def __init__(self, badges: BadgeAllocator, ep: Thread):
        super().__init__(badges)
        self.ep = ep
