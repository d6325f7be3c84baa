"""What the gRPC edge writes to the audit log, and when.

``migrate.rpc.map_errors`` hands every finished call to the servicer's
``Auditor`` (if it has one: the coordinator's does, agents have none). The
auditor records:

- every call of a method its access table allows to operators only (the
  methods that change the fleet: start, kill, moves, checkpoints, restores),
  whatever its outcome, once, when it returns: a move is recorded when it is
  accepted, its end is in the move itself;
- every refused call (PERMISSION_DENIED, UNAUTHENTICATED), whatever the method.

A record names the caller (its identity URI; a plaintext caller is the
policy's local identity), the method, the request's key arguments (top-level
scalar fields and small migrate.v1 messages; long strings by their length only,
bytes never), what the call made ("move/ID", "checkpoint/ID"), and the outcome
(``OK`` or the error's reason, with its message). No grpc here.
"""

from __future__ import annotations

import logging
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from .. import errors
from ..limits import MAX_AUDIT_ARGUMENT_LENGTH
from ..store.audit import AuditLog
from .access import AccessPolicy
from .identity import Identity, Role

__all__ = ["Auditor", "audited_methods", "describe_request", "resource_of", "REFUSALS"]

log = logging.getLogger(__name__)

#: Outcomes recorded for every method.
REFUSALS = frozenset({"PERMISSION_DENIED", "UNAUTHENTICATED"})
_OPERATORS_ONLY = frozenset({Role.OPERATOR})
#: A nested message larger than this is recorded by its size only.
_SMALL_MESSAGE = 256


def audited_methods(policy: AccessPolicy) -> frozenset[str]:
    """The methods ``policy`` allows to operators only: those that change the fleet."""
    return frozenset(m for m, rule in policy.table.items() if rule == _OPERATORS_ONLY)


def _text(field: FieldDescriptor, value: Any) -> str:
    if field.type == FieldDescriptor.TYPE_BYTES:
        return f"<{len(value)} bytes>"
    if field.enum_type is not None:
        known = field.enum_type.values_by_number.get(value)
        return known.name if known is not None else str(value)
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if len(text) > MAX_AUDIT_ARGUMENT_LENGTH or not text.isprintable():
        return f"<{len(text)} characters>"
    return text


def _describe(message: Message, prefix: str, into: dict[str, str]) -> None:
    for field, value in message.ListFields():
        key = f"{prefix}{field.name}"
        if field.is_repeated:
            into[key] = f"<{len(value)} items>"
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if value.DESCRIPTOR.file.package == "migrate.v1" \
                    and value.ByteSize() <= _SMALL_MESSAGE:
                _describe(value, f"{key}.", into)
            else:
                into[key] = f"<{value.ByteSize()} bytes>"
        else:
            into[key] = _text(field, value)


def describe_request(request: object) -> dict[str, str]:
    """The request's arguments for the log (a client stream: none)."""
    into: dict[str, str] = {}
    if isinstance(request, Message):
        _describe(request, "", into)
    return into


def resource_of(response: object) -> str:
    """What a response names as made or acted on: ``<field>/<id>`` of its first
    message field with an id (a move, a checkpoint), else ``<field>/<name>``."""
    if not isinstance(response, Message):
        return ""
    for key in ("id", "name"):
        for field, value in response.ListFields():
            if field.type == FieldDescriptor.TYPE_MESSAGE and not field.is_repeated \
                    and key in value.DESCRIPTOR.fields_by_name and getattr(value, key):
                return f"{field.name}/{getattr(value, key)}"
    return ""


class Auditor:
    """Records a service's calls in ``audit_log`` (see the module's docstring)."""

    def __init__(self, audit_log: AuditLog, policy: AccessPolicy):
        self.log = audit_log
        self.methods = audited_methods(policy)

    def covers(self, method: str, outcome: str) -> bool:
        return method in self.methods or outcome in REFUSALS

    def record(self, method: str, *, identity: Identity | None, peer: str, request: object,
               outcome: str, detail: str = "", response: object = None,
               refused_as: str = "") -> None:
        """Records a finished call if it is covered. Never raises: a call that ran is
        not turned into a failure because its record could not be written (that is
        logged as an error)."""
        if not self.covers(method, outcome):
            return
        who = identity.uri if identity is not None else refused_as
        try:
            self.log.append(who, peer, method, describe_request(request), outcome,
                            detail[:1000], resource_of(response))
        except Exception as error:  # noqa: BLE001 - logged: the call's own result stands
            log.error("audit: cannot record %s by %s (%s): %s", method, who or peer, outcome,
                      error)

    @staticmethod
    def outcome_of(error: BaseException) -> str:
        return errors.reason_of(error)

