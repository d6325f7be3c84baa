"""The errors of the migration service, named by whose fault they are.

Each error has a stable ``reason`` (the ``google.rpc.ErrorInfo`` reason on the
wire, the key of the CLI's exit codes) and the gRPC status that tells a
caller what to do: fix the request, retry the call, retry at a higher level,
or fix the state first. Nothing here imports grpc; ``migrate.rpc`` maps
errors to statuses and back, once, at each edge. genode_cr's errors keep
their own reasons (their ``code`` upper-cased) and are mapped by the table
at the end.

    MigrateError
     ├─ RequestError          the caller asked for something impossible  INVALID_ARGUMENT
     │   ├─ ConfigError        a configuration file, flag or key file is bad
     │   ├─ NotFound           unknown board, component, move, checkpoint NOT_FOUND
     │   └─ AlreadyExists                                                 ALREADY_EXISTS
     ├─ Unauthenticated        the peer has no identity we accept         UNAUTHENTICATED
     ├─ PermissionDenied       the peer's role may not make this call     PERMISSION_DENIED
     ├─ Conflict               another operation holds the resource       ABORTED
     │   └─ AlreadyMoving
     ├─ PreconditionFailed     the fleet is not in a state that allows it FAILED_PRECONDITION
     │   ├─ PreflightFailed    a move's checks failed (names the check)
     │   ├─ Fenced             a stale owner acted on a component
     │   ├─ DowntimeOvershoot  the downtime budget cannot be met
     │   └─ UntrustedCheckpoint a checkpoint's signature is missing, unknown or wrong
     ├─ Unavailable            a board or agent cannot be reached now     UNAVAILABLE
     ├─ DataLoss               a stored or streamed checkpoint is damaged DATA_LOSS
     ├─ Cancelled              the operation was cancelled                CANCELLED
     └─ InternalError          our bug                                    INTERNAL
"""

from __future__ import annotations

from genode_cr import errors as cr_errors

__all__ = [
    "MigrateError",
    "RequestError",
    "ConfigError",
    "NotFound",
    "AlreadyExists",
    "Unauthenticated",
    "PermissionDenied",
    "Conflict",
    "AlreadyMoving",
    "PreconditionFailed",
    "PreflightFailed",
    "Fenced",
    "DowntimeOvershoot",
    "UntrustedCheckpoint",
    "CheckpointUnsigned",
    "CheckpointSignerUnknown",
    "CheckpointSignatureInvalid",
    "Unavailable",
    "DataLoss",
    "Cancelled",
    "InternalError",
    "reason_of",
    "status_of",
    "error_from_reason",
    "DOMAIN",
]

#: ErrorInfo.domain of every error we send.
DOMAIN = "genode-migrate"


class MigrateError(Exception):
    reason = "ERROR"
    status = "UNKNOWN"

    def __init__(self, message: str, *, reason: str | None = None,
                 metadata: dict[str, str] | None = None):
        super().__init__(message)
        if reason:
            self.reason = reason
        self.metadata = dict(metadata or {})


class RequestError(MigrateError):
    reason = "BAD_REQUEST"
    status = "INVALID_ARGUMENT"


class ConfigError(RequestError):
    """A configuration file, a command-line flag or a certificate or key file is bad."""

    reason = "BAD_CONFIG"


class NotFound(RequestError):
    reason = "NOT_FOUND"
    status = "NOT_FOUND"


class AlreadyExists(RequestError):
    reason = "ALREADY_EXISTS"
    status = "ALREADY_EXISTS"


class Unauthenticated(MigrateError):
    """The peer presented no identity we accept: a TLS certificate without a
    genode-migrate SAN URI, or a handshake that failed. Fix the credentials."""

    reason = "UNAUTHENTICATED"
    status = "UNAUTHENTICATED"


class PermissionDenied(MigrateError):
    """The peer's identity is known but its role may not make this call
    (metadata: identity, method, allowed)."""

    reason = "PERMISSION_DENIED"
    status = "PERMISSION_DENIED"


class Conflict(MigrateError):
    reason = "CONFLICT"
    status = "ABORTED"


class AlreadyMoving(Conflict):
    reason = "ALREADY_MOVING"


class PreconditionFailed(MigrateError):
    reason = "FAILED_PRECONDITION"
    status = "FAILED_PRECONDITION"


class PreflightFailed(PreconditionFailed):
    reason = "PREFLIGHT_FAILED"


class Fenced(PreconditionFailed):
    reason = "FENCED"


class DowntimeOvershoot(PreconditionFailed):
    reason = "DOWNTIME_OVERSHOOT"


class UntrustedCheckpoint(PreconditionFailed):
    """A checkpoint whose origin is not proven: refused before it reaches a board.

    FAILED_PRECONDITION, not PERMISSION_DENIED: the caller may make the call; it is
    the checkpoint that is not acceptable until the trust configuration (or the
    checkpoint) changes. Retrying does not help. The subclasses' reasons say why."""

    reason = "UNTRUSTED_CHECKPOINT"


class CheckpointUnsigned(UntrustedCheckpoint):
    reason = "CHECKPOINT_UNSIGNED"


class CheckpointSignerUnknown(UntrustedCheckpoint):
    reason = "CHECKPOINT_SIGNER_UNKNOWN"


class CheckpointSignatureInvalid(UntrustedCheckpoint):
    reason = "CHECKPOINT_SIGNATURE_INVALID"


class Unavailable(MigrateError):
    reason = "UNAVAILABLE"
    status = "UNAVAILABLE"


class DataLoss(MigrateError):
    reason = "DATA_LOSS"
    status = "DATA_LOSS"


class Cancelled(MigrateError):
    reason = "CANCELLED"
    status = "CANCELLED"


class InternalError(MigrateError):
    reason = "INTERNAL"
    status = "INTERNAL"


# genode_cr's errors, as the service presents them.
_CR_STATUS: dict[type[cr_errors.GenodeCrError], str] = {
    cr_errors.UnknownComponent: "NOT_FOUND",
    cr_errors.NameInUse: "ALREADY_EXISTS",
    cr_errors.RequestError: "FAILED_PRECONDITION",
    cr_errors.CheckpointCorrupt: "DATA_LOSS",
    cr_errors.BrokenChain: "FAILED_PRECONDITION",
    cr_errors.WrongArch: "FAILED_PRECONDITION",
    cr_errors.CheckpointError: "FAILED_PRECONDITION",
    cr_errors.BoardError: "FAILED_PRECONDITION",
    cr_errors.BoardUnreachable: "UNAVAILABLE",
    cr_errors.ProtocolError: "INTERNAL",
}


def reason_of(error: BaseException) -> str:
    if isinstance(error, MigrateError):
        return error.reason
    if isinstance(error, cr_errors.GenodeCrError):
        return error.code.upper()
    return "INTERNAL"


def status_of(error: BaseException) -> str:
    """The gRPC status code name for an error (grpc.StatusCode[...])."""
    if isinstance(error, MigrateError):
        return error.status
    if isinstance(error, cr_errors.GenodeCrError):
        for cls in type(error).__mro__:
            if cls in _CR_STATUS:
                return _CR_STATUS[cls]
        return "UNKNOWN"
    return "INTERNAL"


def _subclasses(cls: type) -> list[type]:
    return [cls] + [s for sub in cls.__subclasses__() for s in _subclasses(sub)]


def _class_of_status(status: str) -> type[MigrateError]:
    """The most general of our classes with that status (DEADLINE_EXCEEDED: a
    peer that did not answer in time is unavailable)."""
    status = "UNAVAILABLE" if status == "DEADLINE_EXCEEDED" else status
    return next((cls for cls in _subclasses(MigrateError)[1:] if cls.status == status),
                MigrateError)


def error_from_reason(reason: str, message: str, status: str = "UNKNOWN",
                      metadata: dict[str, str] | None = None) -> MigrateError:
    """Rebuilds the error a peer reported, so that callers never catch grpc types.

    The class whose own reason it is, else the class of its status with the
    reason kept (a board's ``ROM_MISSING`` becomes a PreconditionFailed whose
    reason is ROM_MISSING): across gRPC every error is a MigrateError."""
    for cls in _subclasses(MigrateError):
        if cls.reason == reason:
            return cls(message, metadata=metadata)
    return _class_of_status(status)(message, reason=reason or None, metadata=metadata)
