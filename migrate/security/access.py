"""Authorization: which identity may make which call.

Each servicer has one table, method name -> the roles allowed (or
``ANY_PEER``), and an ``AccessPolicy`` built from it; ``migrate.rpc.map_errors``
asks the policy once per call, before the method runs. A method missing from
the table is refused: a new RPC is closed until someone decides who may call it.

A policy may bind a role to one identity: an agent's policy binds the
coordinator role to its own coordinator, so another coordinator's
certificate does not let anyone stage, commit or kill on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from .. import errors
from .identity import Identity, Role

__all__ = ["ANY_PEER", "Allowed", "AccessPolicy", "READERS", "OPERATORS"]


class _AnyPeer:
    """Every identified peer, whatever its role (health-like calls)."""

    def __repr__(self) -> str:
        return "ANY_PEER"


ANY_PEER = _AnyPeer()
Allowed = frozenset[Role] | _AnyPeer

#: Who may read the fleet's state on the coordinator.
READERS: frozenset[Role] = frozenset({Role.VIEWER, Role.OPERATOR})
#: Who may change it.
OPERATORS: frozenset[Role] = frozenset({Role.OPERATOR})


@dataclass(frozen=True)
class AccessPolicy:
    """``service``: its short name for messages (``CoordinatorService``);
    ``table``: method -> allowed; ``local``: who a plaintext loopback caller is;
    ``bound``: roles that only one identity may hold here."""

    service: str
    table: Mapping[str, Allowed]
    local: Identity
    bound: Mapping[Role, Identity] = field(default_factory=dict)

    def allowed(self, method: str) -> str:
        """Who may call ``method``, in words."""
        rule = self.table.get(method)
        if rule is None:
            return "nobody"
        if isinstance(rule, _AnyPeer):
            return "any authenticated peer"
        names = [self.bound[r].uri if r in self.bound else r.value for r in sorted(rule)]
        return ", ".join(names) or "nobody"

    def authorize(self, method: str, peer: Identity | None) -> Identity:
        """The identity the call runs as (``peer``, or ``local`` for a plaintext loopback
        caller); PermissionDenied when it may not call ``method``."""
        identity = self.local if peer is None else peer
        rule = self.table.get(method)
        if isinstance(rule, _AnyPeer):
            return identity
        permitted = rule is not None and identity.role in rule and (
            identity.role not in self.bound or self.bound[identity.role] == identity)
        if not permitted:
            allowed = self.allowed(method)
            how = " (a plaintext loopback caller)" if peer is None else ""
            raise errors.PermissionDenied(
                f"{identity.uri}{how} may not call {self.service}.{method}; allowed: {allowed}",
                metadata={"identity": identity.uri, "method": f"{self.service}.{method}",
                          "allowed": allowed})
        return identity
