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
