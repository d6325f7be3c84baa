"""Capabilities as Fiasco.OC has them: kernel objects with board-global badges,
per-PD capability spaces (slot -> object), and RPC objects whose methods are
reached through an opcode table.

A badge is what base-foc calls a capability's local name: a 16-bit id that
the board assigns to every RPC and kernel object it creates. Two boards
assign different badges to "the same" object, which is why a restore must
translate them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from . import abi

if TYPE_CHECKING:
    from .pd import ProtectionDomain

__all__ = [
    "BadgeAllocator",
    "CapSpace",
    "ComponentError",
    "KernelObject",
    "RpcObject",
    "rpc",
]

BADGE_LIMIT = 1 << 16


class ComponentError(Exception):
    """An error a component sees as an RPC or syscall result, not a crash."""

    def __init__(self, code: int, message: str = ""):
        super().__init__(message or f"error {code}")
        self.code = code


class BadgeAllocator:
    """The board's 16-bit badge space.

    Each board starts at its own pseudo-random point so that badges of two
    boards differ even for identical histories, as they do on hardware whose
    boot order differs.
    """

    def __init__(self, seed: str):
        self._next = 1 + random.Random(seed).randrange(BADGE_LIMIT - 2)
        self._used: set[int] = set()

    def alloc(self) -> int:
        if len(self._used) >= BADGE_LIMIT - 1:
            raise ComponentError(abi.E_OUT_OF_CAPS, "badge space exhausted")
        while self._next in self._used or self._next == 0:
            self._next = (self._next + 1) % BADGE_LIMIT
        badge = self._next
        self._used.add(badge)
        self._next = (self._next + 1) % BADGE_LIMIT
        return badge

    def free(self, badge: int) -> None:
        self._used.discard(badge)

    def __len__(self) -> int:
        return len(self._used)


class KernelObject:
    """Anything a capability can point to."""

    kind: ClassVar[str] = "object"

    def __init__(self, badges: BadgeAllocator):
        self._badges = badges
        self.badge = badges.alloc()
        self.destroyed = False

    def destroy(self) -> None:
        if not self.destroyed:
            self.destroyed = True
            self._badges.free(self.badge)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} badge={self.badge}>"


class CapSpace:
    """A PD's kernel capability space: slot index -> object."""

    def __init__(self) -> None:
        self._slots: dict[int, KernelObject] = {}

    def install(self, selector: int, obj: KernelObject) -> None:
        if selector & ((1 << abi.CAP_SHIFT) - 1) or selector == 0:
            raise ComponentError(abi.E_INVALID_ARG, f"bad capability selector {selector:#x}")
        self._slots[abi.cap_index(selector)] = obj

    def lookup(self, selector: int) -> KernelObject | None:
        if selector & ((1 << abi.CAP_SHIFT) - 1):
            return None
        obj = self._slots.get(abi.cap_index(selector))
        return None if obj is None or obj.destroyed else obj

    def remove(self, selector: int) -> None:
        self._slots.pop(abi.cap_index(selector), None)

    def items(self) -> list[tuple[int, KernelObject]]:
        return [(abi.kcap(i), o) for i, o in sorted(self._slots.items()) if not o.destroyed]


# --- RPC ------------------------------------------------------------------

@dataclass(frozen=True)
class RpcSpec:
    method: str
    args: tuple[str, ...]


def rpc(opcode: int, *args: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Makes a method reachable by components under ``opcode``.

    Argument kinds: ``int`` (the raw register), ``cap`` (a selector resolved in
    the caller's capability space), ``str`` (a NUL-terminated string in the
    caller's memory).
    """

    def mark(method: Callable[..., Any]) -> Callable[..., Any]:
        method.__rpc__ = (opcode, args)  # type: ignore[attr-defined]
        return method

    return mark


@dataclass
class RpcReply:
    err: int = abi.E_OK
    words: tuple[int, ...] = ()
    cap: KernelObject | None = None


class RpcObject(KernelObject):
    """A core RPC object: its ``@rpc`` methods form its interface."""

    _rpc_table: ClassVar[dict[int, RpcSpec]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[int, RpcSpec] = {}
        for base in reversed(cls.__mro__):
            for name, member in vars(base).items():
                marker = getattr(member, "__rpc__", None)
                if marker:
                    table[marker[0]] = RpcSpec(name, marker[1])
        cls._rpc_table = table

    def dispatch(self, caller: ProtectionDomain, opcode: int, regs: list[int]) -> RpcReply:
        spec = self._rpc_table.get(opcode)
        if spec is None:
            return RpcReply(abi.E_INVALID_OPCODE)
        args: list[Any] = []
        raw_args = iter(regs)
        for kind in spec.args:
            if kind == "caller":
                args.append(caller)
                continue
            raw = next(raw_args)
            if kind == "cap":
                obj = caller.cap_space.lookup(raw)
                if obj is None:
                    return RpcReply(abi.E_INVALID_CAP)
                args.append(obj)
            elif kind == "str":
                try:
                    args.append(caller.read_string(raw))
                except ComponentError as error:
                    return RpcReply(error.code)
            else:
                args.append(raw)
        try:
            result = getattr(self, spec.method)(*args)
        except ComponentError as error:
            return RpcReply(error.code)
        return _reply_from(result)


def _reply_from(result: Any) -> RpcReply:
    if result is None:
        return RpcReply()
    if isinstance(result, KernelObject):
        return RpcReply(cap=result)
    if isinstance(result, int):
        return RpcReply(words=(result,))
    cap = next((r for r in result if isinstance(r, KernelObject)), None)
    words = tuple(r for r in result if isinstance(r, int))
    return RpcReply(words=words, cap=cap)
