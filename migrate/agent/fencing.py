"""Fencing: a stale owner of a component must not act on it.

The coordinator raises a component's ownership generation whenever it hands
the component to another board (a move, a failover). Calls that act on a
component carry the caller's generation; the agent remembers the highest it
has seen per component and refuses anything older, so a coordinator that
lost track (or a move that was rolled forward elsewhere) cannot resume a
stale copy. Generation 0 means "unfenced": a person using the agent directly.

The memory is the agent process's: an agent that restarts has forgotten it,
and the coordinator re-establishes it with its next fenced call.
"""

from __future__ import annotations

from ..errors import Fenced

__all__ = ["Fences"]


class Fences:
    def __init__(self) -> None:
        self._highest: dict[str, int] = {}

    def highest(self, component: str) -> int:
        return self._highest.get(component, 0)

    def admit(self, component: str, generation: int) -> None:
        """Records ``generation`` for ``component``; Fenced if it is older than one seen."""
        if generation == 0:
            return
        highest = self._highest.get(component, 0)
        if generation < highest:
            raise Fenced(f"{component}: generation {generation} is stale; this board has "
                         f"seen generation {highest}",
                         metadata={"component": component, "generation": str(generation),
                                   "highest_generation": str(highest)})
        self._highest[component] = generation
