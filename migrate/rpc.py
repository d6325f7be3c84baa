"""The gRPC edge shared by the agent, the coordinator and their clients.

Errors are mapped here and nowhere else: a servicer method raises our errors
(``migrate.errors`` or genode_cr's) and ``map_errors`` turns each into its
status code with a ``google.rpc.ErrorInfo`` detail; a client turns an
``RpcError`` back into the same error class with ``error_from_rpc``.

Authorization happens here too, once per call: before a method runs,
``map_errors`` asks the servicer's ``access`` policy (migrate.security.access)
whether the peer's certificate identity may call it, refuses with
PERMISSION_DENIED or UNAUTHENTICATED, and records the identity for the call
(``migrate.security.current_caller``). Then the request is held to the bounds
of ``migrate.limits`` (a client stream message by message), and when the call
has ended, the servicer's ``auditor`` (migrate.security.audit), if it has one,
records it: so no servicer method can skip a check or its audit record.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import re
from typing import Any, Callable, Iterator, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from google.protobuf.message import Message

from . import errors, limits
from .limits import MAX_MESSAGE_BYTES
from .security.identity import Identity, peer_identity, set_caller

__all__ = [
    "MAX_MESSAGE_BYTES",
    "SERVER_OPTIONS",
    "CHANNEL_OPTIONS",
    "map_errors",
    "authorize",
    "DecodeRequests",
    "Undecodable",
    "server_interceptors",
    "error_from_rpc",
    "client_errors",
    "add_health_and_reflection",
    "status_for",
    "SERVING",
    "NOT_SERVING",
]

log = logging.getLogger(__name__)

# SO_REUSEPORT is on by default in gRPC: a second server would bind our port
# silently and steal connections.
SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.so_reuseport", 0),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 5000),
]

CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 10000),
    ("grpc.keepalive_timeout_ms", 5000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Reconnect quickly after an agent or coordinator restart.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


class Undecodable:
    """What a request that did not parse becomes (``DecodeRequests``): the method's
    edge (``map_errors``) refuses it as a RequestError, after authorizing the caller."""

    def __init__(self, error: Exception, size: int):
        self.error, self.size = error, size

    def refusal(self, method: str) -> errors.RequestError:
        return errors.RequestError(f"the {method} request ({self.size} bytes) is not a valid "
                                   f"message: {self.error}")


def _tolerant(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as error:  # noqa: BLE001 - DecodeError, or anything a parser raises
            return Undecodable(error, len(data))
    return parse


class DecodeRequests(grpc.aio.ServerInterceptor):
    """Lets a request that does not parse reach our edge instead of gRPC's, which would
    end the call UNKNOWN and log a traceback: it becomes INVALID_ARGUMENT, audited like
    any bad request. Only our services' methods (``migrate.v1``)."""

    async def intercept_service(self, continuation,  # type: ignore[no-untyped-def]
                                handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None \
                or not handler_call_details.method.startswith("/migrate.v1."):
            return handler
        return handler._replace(request_deserializer=_tolerant(handler.request_deserializer))


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """What every server of ours is built with (``grpc.aio.server(interceptors=...)``)."""
    return [DecodeRequests()]


def status_for(error: BaseException) -> status_pb2.Status:
    code = grpc.StatusCode[errors.status_of(error)]
    info = error_details_pb2.ErrorInfo(reason=errors.reason_of(error), domain=errors.DOMAIN)
    for key, value in getattr(error, "metadata", {}).items():
        info.metadata[key] = str(value)
    detail = any_pb2.Any()
    detail.Pack(info)
    message = str(error) or type(error).__name__
    return status_pb2.Status(code=code.value[0], message=message, details=[detail])


async def _abort(context: grpc.aio.ServicerContext, error: BaseException) -> None:
    if not isinstance(error, (errors.MigrateError,)) and errors.status_of(error) == "INTERNAL" \
            and not _is_cr_error(error):
        log.exception("internal error", exc_info=error)
    await context.abort_with_status(rpc_status.to_status(status_for(error)))


def _is_cr_error(error: BaseException) -> bool:
    from genode_cr.errors import GenodeCrError
    return isinstance(error, GenodeCrError)


F = TypeVar("F", bound=Callable[..., Any])


def authorize(servicer: Any, method: str, context: grpc.aio.ServicerContext) -> Identity:
    """The caller's identity if the servicer's policy lets it call ``method``.

    A servicer without an ``access`` policy is refused everything: closed by default.
    """
    access = getattr(servicer, "access", None)
    if access is None:
        raise errors.PermissionDenied(f"{type(servicer).__name__} has no access policy")
    try:
        identity = access.authorize(method, peer_identity(context))
    except (errors.PermissionDenied, errors.Unauthenticated) as refusal:
        log.warning("refused %s from %s: %s", method, context.peer(), refusal)
        raise
    set_caller(identity)
    return identity


class _Call:
    """One call at the edge: who made it, and its audit record when it ends."""

    def __init__(self, servicer: Any, method: str, request: Any,
                 context: grpc.aio.ServicerContext):
        self.servicer, self.method, self.request, self.context = servicer, method, request, context
        self.identity: Identity | None = None

    def begin(self) -> Any:
        """Authorizes the caller; the request to serve, bounded (``migrate.limits``)."""
        self.identity = authorize(self.servicer, self.method, self.context)
        if isinstance(self.request, Undecodable):
            raise self.request.refusal(self.method)
        if isinstance(self.request, Message):
            limits.check_request(self.request)
            return self.request
        return limits.bounded_stream(_decoded(self.request, self.method), self.method)

    def end(self, outcome: str, detail: str = "", response: Any = None,
            error: BaseException | None = None) -> None:
        auditor = getattr(self.servicer, "auditor", None)
        if auditor is None:
            return
        refused_as = ""
        if isinstance(error, errors.PermissionDenied):
            refused_as = error.metadata.get("identity", "")
        auditor.record(self.method, identity=self.identity, peer=self.context.peer() or "",
                       request=self.request, outcome=outcome, detail=detail,
                       response=response, refused_as=refused_as)

    def failed(self, error: BaseException) -> None:
        self.end(errors.reason_of(error), str(error) or type(error).__name__, error=error)

    def aborted(self) -> None:
        code = self.context.code() if callable(getattr(self.context, "code", None)) else None
        self.end(getattr(code, "name", None) or "ABORTED", self.context.details() or "")


async def _decoded(requests: Any, method: str) -> Any:
    """A client stream's messages; RequestError at the first that did not parse."""
    async for request in requests:
        if isinstance(request, Undecodable):
            raise request.refusal(method)
        yield request


def map_errors(method: F) -> F:
    """Wraps a servicer method (unary or streaming): the caller is authorized first
    (``authorize``) and the request bounded (``migrate.limits``), our errors become
    statuses, and the servicer's auditor records the call."""
    name = method.__name__
    if inspect.isasyncgenfunction(method):
        @functools.wraps(method)
        async def stream(self, request, context):  # type: ignore[no-untyped-def]
            call = _Call(self, name, request, context)
            try:
                request = call.begin()
                async for item in method(self, request, context):
                    yield item
            except (asyncio.CancelledError, GeneratorExit):
                call.end("CANCELLED", "the caller cancelled the call")
                raise
            except grpc.aio.AbortError:
                call.aborted()
                raise
            except Exception as error:  # noqa: BLE001 - mapped, never lost
                call.failed(error)
                await _abort(context, error)
            else:
                call.end("OK")
        return stream  # type: ignore[return-value]

    @functools.wraps(method)
    async def unary(self, request, context):  # type: ignore[no-untyped-def]
        call = _Call(self, name, request, context)
        try:
            response = await method(self, call.begin(), context)
        except asyncio.CancelledError:
            call.end("CANCELLED", "the caller cancelled the call")
            raise
        except grpc.aio.AbortError:
            call.aborted()
            raise
        except Exception as error:  # noqa: BLE001
            call.failed(error)
            await _abort(context, error)
        else:
            call.end("OK", response=response)
            return response
    return unary  # type: ignore[return-value]


#: What gRPC says when the client side of a TLS handshake refused the server: its
#: certificate (another CA, expired, not the identity expected) or its plaintext. Only
#: these, never a connection that merely broke during a handshake: that is UNAVAILABLE
#: and may heal.
_TLS_FAILURE = re.compile(r"(?i)hostname verification check failed|certificate_verify_failed"
                          r"|wrong_version_number")


def error_from_rpc(error: grpc.RpcError, *, target: str = "") -> Exception:
    """Our error for a failed call: by ErrorInfo reason, else by status code."""
    code = error.code() if callable(getattr(error, "code", None)) else None
    details = error.details() if callable(getattr(error, "details", None)) else str(error)
    reason, metadata = "", {}
    status = None
    with contextlib.suppress(Exception):
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
    code_name = code.name if code is not None else "UNKNOWN"
    message = details or code_name
    if not reason:
        # No ErrorInfo: gRPC itself ended the call, not one of our servers (they
        # always attach one). A TLS handshake our side refused (the server's
        # certificate is not from our CA, or not the identity we expect) will
        # not heal by retrying: it is UNAUTHENTICATED. INTERNAL means the
        # transport broke under a stream ("Internal error from Core" when a
        # peer dies mid-stream): the peer went away, which callers treat like
        # any unreachable peer.
        if code_name == "UNAVAILABLE" and _TLS_FAILURE.search(message):
            code_name, reason = "UNAUTHENTICATED", "TLS_HANDSHAKE_FAILED"
            message = (f"{target + ': ' if target else ''}TLS handshake failed (the server's "
                       f"certificate is not from the configured CA, not the expected "
                       f"identity, or the server does not speak TLS): {message}")
        elif code_name in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL"):
            code_name, reason = "UNAVAILABLE", "UNAVAILABLE"
            message = f"{target + ': ' if target else ''}{message}"
        elif code_name == "RESOURCE_EXHAUSTED":
            reason = "BAD_REQUEST"
    return errors.error_from_reason(reason, message, code_name, metadata)


@contextlib.contextmanager
def client_errors(target: str = "") -> Iterator[None]:
    """Raises our error in place of a grpc.RpcError (sync or aio calls)."""
    try:
        yield
    except grpc.RpcError as error:
        raise error_from_rpc(error, target=target) from None


def add_health_and_reflection(server: grpc.aio.Server, service_names: list[str]
                              ) -> health.aio.HealthServicer:
    """The standard health service (overall status "") and reflection."""
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    names = [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server)
    return servicer


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
