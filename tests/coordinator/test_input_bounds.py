"""Bounded input at the gRPC edge of a real coordinator and a real agent: out-of-bound
fields, undecodable requests and oversized messages are refused with a clear status
(the bound named), and both servers go on serving."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from migrate.limits import MAX_MESSAGE_BYTES
from migrate.security import COORDINATOR, Identity, Role
from migrate.v1 import agent_pb2 as apb
from migrate.v1 import coordinator_pb2 as pb

from .conftest import OPERATOR

AGENT_SERVER = Identity(Role.AGENT, "boardA")
COORDINATOR_PATH = "/migrate.v1.CoordinatorService/"
AGENT_PATH = "/migrate.v1.AgentService/"


def reason(error: grpc.RpcError) -> str:
    info = error_details_pb2.ErrorInfo()
    status = rpc_status.from_call(error)
    return info.reason if status and status.details and status.details[0].Unpack(info) else ""


def refused(call, payload: bytes) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(payload, timeout=20)
    return caught.value


@pytest.fixture
def channels(fleet):
    f = fleet(boards=("boardA",))
    coordinator = f.channel(identity=OPERATOR)
    agent = f.channel(f.agents["boardA"].address, identity=COORDINATOR, server=AGENT_SERVER)
    yield f, coordinator, agent
    coordinator.close()
    agent.close()


@pytest.mark.parametrize("method, request_, bound", [
    ("StartComponent", pb.StartComponentRequest(name="n" * 65, board="boardA"),
     "MAX_NAME_LENGTH"),
    ("StartComponent", pb.StartComponentRequest(name="counter", board="boardA",
                                                config="x" * (65 << 10)), "MAX_CONFIG_BYTES"),
    ("ListMoves", pb.ListMovesRequest(page_size=100_000), "MAX_PAGE_SIZE"),
    ("GetMove", pb.GetMoveRequest(id="\x1b[2J"), "not printable"),
    ("StreamLogs", pb.StreamLogsRequest(name="counter", tail=1 << 30), "MAX_LOG_TAIL"),
])
def test_the_coordinator_names_the_bound(channels, method, request_, bound):
    _, coordinator, _ = channels
    call = coordinator.unary_stream if method == "StreamLogs" else coordinator.unary_unary
    def invoke(payload, timeout):  # noqa: E306
        result = call(COORDINATOR_PATH + method)(payload, timeout=timeout)
        return list(result) if method == "StreamLogs" else result
    error = refused(invoke, request_.SerializeToString())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and bound in error.details()
    assert reason(error) == "BAD_REQUEST"


def test_the_agent_names_the_bound_and_refuses_garbage(channels):
    f, _, agent = channels
    start = agent.unary_unary(AGENT_PATH + "StartComponent")
    error = refused(start, apb.AgentServiceStartComponentRequest(
        name="n" * 65, rom="counter").SerializeToString())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "MAX_NAME_LENGTH" in \
        error.details()
    error = refused(start, b"\xff\xff\xff")              # does not parse
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and reason(error) == "BAD_REQUEST"
    assert "not a valid message" in error.details()
    stage = agent.stream_unary(AGENT_PATH + "StageCheckpoint")
    with pytest.raises(grpc.RpcError) as caught:
        stage(iter([apb.AgentServiceStageCheckpointRequest(session=7).SerializeToString(),
                    b"\x0a\xff"]), timeout=20)
    assert caught.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
    assert "Traceback" not in f.agents["boardA"].log_text()


def test_oversized_messages_are_refused_and_both_servers_go_on(channels):
    f, coordinator, agent = channels
    big = pb.StartComponentRequest(name="counter", board="boardA",
                                   config="x" * (MAX_MESSAGE_BYTES + 1)).SerializeToString()
    for channel, path in ((coordinator, COORDINATOR_PATH), (agent, AGENT_PATH)):
        error = refused(channel.unary_unary(path + "StartComponent"), big)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f.coordinator.alive() and f.agents["boardA"].alive()
    assert [b.name for b in f.client().list_boards()] == ["boardA"]
    assert not f.client().list_components().components       # nothing started
