"""Failed calls become our errors: by ErrorInfo reason when one of our servers
answered, by status code when gRPC itself ended the call."""

from __future__ import annotations

import grpc
import pytest

from migrate import errors, rpc


class Failed(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, trailing=()):
        self._code, self._details, self._trailing = code, details, tuple(trailing)

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailing


@pytest.mark.parametrize("code, details", [
    (grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses"),
    (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
    # Seen when an agent was killed while a stage stream was open (a CI run).
    (grpc.StatusCode.INTERNAL, "Internal error from Core"),
])
def test_transport_failures_are_unavailable(code, details):
    error = rpc.error_from_rpc(Failed(code, details), target="agent of boardB")
    assert isinstance(error, errors.Unavailable) and error.reason == "UNAVAILABLE"
    assert str(error).startswith("agent of boardB: ")


def test_our_servers_errors_keep_their_class_and_reason():
    status = rpc.status_for(errors.Fenced("stale", metadata={"generation": "3"}))
    trailing = (("grpc-status-details-bin", status.SerializeToString()),)
    error = rpc.error_from_rpc(Failed(grpc.StatusCode.FAILED_PRECONDITION, "stale", trailing))
    assert isinstance(error, errors.Fenced) and error.metadata == {"generation": "3"}
    internal = rpc.status_for(errors.InternalError("our bug"))
    error = rpc.error_from_rpc(Failed(grpc.StatusCode.INTERNAL, "our bug",
                                      (("grpc-status-details-bin",
                                        internal.SerializeToString()),)))
    assert isinstance(error, errors.InternalError)


def test_an_oversized_message_is_the_callers_fault():
    error = rpc.error_from_rpc(Failed(grpc.StatusCode.RESOURCE_EXHAUSTED, "too large"))
    assert isinstance(error, errors.RequestError)


@pytest.mark.parametrize("details", [
    # What gRPC 1.85 said here when the server's certificate was not the expected identity,
    # was from another CA, or the server spoke plaintext.
    "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Custom "
    "verification check failed with error: UNAUTHENTICATED: Hostname Verification Check failed.",
    "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Tls handshake "
    "failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:1000007d:SSL routines:OPENSSL_internal:"
    "CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate",
    "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Tls handshake "
    "failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:100000f7:SSL routines:OPENSSL_internal:"
    "WRONG_VERSION_NUMBER: Invalid certificate verification context",
])
def test_a_refused_tls_handshake_is_unauthenticated_not_a_retry(details):
    error = rpc.error_from_rpc(Failed(grpc.StatusCode.UNAVAILABLE, details), target="coord")
    assert isinstance(error, errors.Unauthenticated) and error.reason == "TLS_HANDSHAKE_FAILED"
    assert str(error).startswith("coord: TLS handshake failed")
    # A server that closed the connection says no more than any dead server.
    closed = rpc.error_from_rpc(Failed(grpc.StatusCode.UNAVAILABLE, "Socket closed"))
    assert isinstance(closed, errors.Unavailable)


def test_denials_from_our_servers_keep_their_class_and_metadata():
    status = rpc.status_for(errors.PermissionDenied("no", metadata={"allowed": "operator"}))
    trailing = (("grpc-status-details-bin", status.SerializeToString()),)
    assert status.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    error = rpc.error_from_rpc(Failed(grpc.StatusCode.PERMISSION_DENIED, "no", trailing))
    assert isinstance(error, errors.PermissionDenied) and error.metadata == {"allowed": "operator"}
