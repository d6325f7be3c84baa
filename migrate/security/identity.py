"""Who is calling: identities, their roles, and how a gRPC peer proves one.

An identity is a SPIFFE-style URI in a certificate's subject alternative
names::

    spiffe://genode-migrate/<role>/<name>      e.g. spiffe://genode-migrate/agent/boardA

The role decides what the peer may do (``migrate.security.access``), the name
tells peers of one role apart (an agent is named by its board). Only the TLS
handshake's view of the peer (gRPC's auth context) is trusted, never
metadata the caller sends.

A caller on a plaintext loopback connection has no certificate:
``peer_identity`` returns None and the server treats it as its configured
local identity (``AccessPolicy.local``; an operator named "local" on the
coordinator, the agent's own coordinator on an agent). Plaintext is only
ever served on loopback, so that identity is "whoever runs on this machine".

Every server also needs a name a TLS client can check in the handshake.
gRPC's Python client verifies the server's certificate against a host name
only (it cannot look at URI SANs), so a server identity also has a DNS form,
``<name>.<role>.genode-migrate``, which server certificates carry as a DNS
SAN and clients use as the TLS target name (``Identity.dns_name``).
"""

from __future__ import annotations

import contextvars
import enum
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from .. import errors

__all__ = [
    "TRUST_DOMAIN",
    "Role",
    "Identity",
    "InvalidIdentity",
    "parse_identity",
    "peer_identity",
    "is_loopback_peer",
    "COORDINATOR",
    "LOCAL_OPERATOR",
    "current_caller",
    "set_caller",
]

TRUST_DOMAIN = "genode-migrate"
_PREFIX = f"spiffe://{TRUST_DOMAIN}/"
#: A name is one DNS label, so that it also fits the identity's DNS form.
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


class Role(enum.StrEnum):
    OPERATOR = "operator"        # may change the fleet: move, restore, start, kill, checkpoint
    VIEWER = "viewer"            # may read it
    AGENT = "agent"              # a board's agent (serves; calls nothing on the coordinator)
    COORDINATOR = "coordinator"  # the coordinator (calls its agents)


class InvalidIdentity(errors.RequestError):
    reason = "INVALID_IDENTITY"


@dataclass(frozen=True, order=True)
class Identity:
    role: Role
    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.role, Role):
            object.__setattr__(self, "role", _role(str(self.role)))
        if not _NAME.fullmatch(self.name or ""):
            raise InvalidIdentity(f"{self.name!r} is not a valid identity name: letters, digits "
                                  "and inner '-', at most 63 characters")

    @property
    def uri(self) -> str:
        return f"{_PREFIX}{self.role}/{self.name}"

    @property
    def dns_name(self) -> str:
        """The DNS SAN a server with this identity carries; clients check it in the handshake."""
        return f"{self.name}.{self.role}.{TRUST_DOMAIN}".lower()

    @property
    def file_stem(self) -> str:
        """``<role>-<name>``: how ``migrate certs init`` names its certificate and key files."""
        return f"{self.role}-{self.name}"

    def __str__(self) -> str:
        return self.uri


def _role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        raise InvalidIdentity(f"unknown role {text!r} (roles: "
                              f"{', '.join(r.value for r in Role)})") from None


def parse_identity(text: str) -> Identity:
    """An identity from its URI, ``role/name`` or ``role-name`` (a file stem).

    Raises InvalidIdentity for anything else, an unknown role included.
    """
    text = text.strip()
    if text.startswith("spiffe://"):
        if not text.startswith(_PREFIX):
            raise InvalidIdentity(f"{text!r} is not in the trust domain {TRUST_DOMAIN!r} "
                                  f"(expected {_PREFIX}<role>/<name>)")
        rest = text.removeprefix(_PREFIX)
        role, sep, name = rest.partition("/")
    elif "/" in text:
        role, sep, name = text.partition("/")
    else:
        role, sep, name = text.partition("-")
    if not sep or not role or "/" in name:
        raise InvalidIdentity(f"{text!r} is not an identity (expected {_PREFIX}<role>/<name> "
                              "or <role>/<name>)")
    return Identity(_role(role), name)


# --- the peer of a call ---------------------------------------------------------------------

def is_loopback_peer(peer: str) -> bool:
    """Whether a gRPC peer string (``ipv4:127.0.0.1:5000``, ``ipv6:[::1]:5000``,
    ``unix:...``) is a process on this machine."""
    if peer.startswith(("unix:", "unix-abstract:")):
        return True
    kind, _, rest = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return False
    host = rest.rpartition(":")[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def peer_identity(context: Any) -> Identity | None:
    """The identity of a call's peer (``context``: a gRPC ServicerContext).

    None on a plaintext connection from loopback. Raises Unauthenticated for a
    TLS peer whose certificate carries no usable genode-migrate identity (none,
    several different ones, an unknown role) and for a plaintext peer that is
    not on loopback.
    """
    auth: dict[str, list[bytes]] = context.auth_context() or {}
    security = [_text(v) for v in auth.get("transport_security_type", [])]
    if "ssl" not in security:
        peer = context.peer() or "?"
        if not is_loopback_peer(peer):
            raise errors.Unauthenticated(f"a plaintext caller from {peer} is not on loopback; "
                                         "plaintext is served to local processes only")
        return None
    uris = sorted({_text(v) for v in auth.get("x509_subject_alternative_name", [])
                   if _text(v).startswith("spiffe:")})
    ours = [u for u in uris if u.startswith(_PREFIX)]
    subject = ", ".join(_text(v) for v in auth.get("x509_subject", [])) or "?"
    if not ours:
        found = f" (it has {', '.join(uris)})" if uris else ""
        raise errors.Unauthenticated(
            f"the peer's certificate ({subject}) carries no genode-migrate identity{found}: "
            f"it needs a SAN URI {_PREFIX}<role>/<name>")
    if len(ours) > 1:
        raise errors.Unauthenticated(f"the peer's certificate ({subject}) carries several "
                                     f"identities ({', '.join(ours)}); it must carry one")
    try:
        return parse_identity(ours[0])
    except InvalidIdentity as error:
        raise errors.Unauthenticated(f"the peer's certificate ({subject}) carries an unknown "
                                     f"identity: {error}") from None


# --- the caller of the running call ----------------------------------------------------------

_caller: contextvars.ContextVar[Identity | None] = contextvars.ContextVar(
    "migrate_caller", default=None)


def current_caller() -> Identity | None:
    """The identity the running RPC was authorized as (set at the gRPC edge), or None
    outside one. Each gRPC call runs in its own task, so this is per call."""
    return _caller.get()


def set_caller(identity: Identity | None) -> None:
    _caller.set(identity)


#: The coordinator identity agents accept by default.
COORDINATOR = Identity(Role.COORDINATOR, "coordinator")
#: Who a plaintext loopback caller of the coordinator is, unless configured otherwise.
LOCAL_OPERATOR = Identity(Role.OPERATOR, "local")
