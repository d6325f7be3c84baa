"""What every gRPC server of ours offers and refuses: health, reflection,
metrics, oversized and malformed requests."""

from __future__ import annotations

import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from migrate.v1 import coordinator_pb2, coordinator_pb2_grpc, resources_pb2 as rpb

from migrate.security import Identity, Role

from .conftest import wait_for


def _services(f, address: str, server=None) -> set[str]:
    with f.channel(address, **({"server": server} if server else {})) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        reply = next(iter(stub.ServerReflectionInfo(iter([request]), timeout=10)))
    return {s.name for s in reply.list_services_response.service}


def _health(f, address: str, service: str = "", server=None) -> int:
    with f.channel(address, **({"server": server} if server else {})) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=10).status


def test_health_and_reflection_on_coordinator_and_agents(fleet):
    f = fleet()
    assert "migrate.v1.CoordinatorService" in _services(f, f.coordinator.address)
    assert "grpc.health.v1.Health" in _services(f, f.coordinator.address)
    assert _health(f, f.coordinator.address) == health_pb2.HealthCheckResponse.SERVING
    # Any peer with a certificate of the fleet's CA may read an agent's health.
    agent, board_a = f.agents["boardA"].address, Identity(Role.AGENT, "boardA")
    assert "migrate.v1.AgentService" in _services(f, agent, board_a)
    assert _health(f, agent, server=board_a) == health_pb2.HealthCheckResponse.SERVING
    # The board goes away: the agent says so, and so does the coordinator's board list.
    f.boards["boardA"].kill()
    wait_for(lambda: _health(f, agent, server=board_a)
             == health_pb2.HealthCheckResponse.NOT_SERVING, 30, "the agent to report NOT_SERVING")
    client = f.client()
    wait_for(lambda: next(b for b in client.list_boards() if b.name == "boardA").health
             == rpb.BOARD_HEALTH_NOT_SERVING, 30, "the coordinator to see boardA down")


def test_oversized_and_malformed_requests_are_refused_and_the_server_lives(fleet):
    f = fleet()
    with f.channel(options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)
        with pytest.raises(grpc.RpcError) as big:
            stub.StartComponent(coordinator_pb2.StartComponentRequest(
                name="counter", board="boardA", config="x" * (8 << 20)), timeout=30)
        assert big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        raw = channel.unary_unary("/migrate.v1.CoordinatorService/GetMove",
                                  request_serializer=lambda b: b,
                                  response_deserializer=lambda b: b)
        for garbage in (b"\xff\xff\xff\xff", b"\x0a\x05ab", bytes(range(256))):
            with pytest.raises(grpc.RpcError) as bad:
                raw(garbage, timeout=10)
            # What does not parse is a bad request (INVALID_ARGUMENT, naming the parse
            # error: rpc.DecodeRequests); what parses is an unknown move.
            assert (bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                    and "Error parsing message" in bad.value.details()
                    or bad.value.code() == grpc.StatusCode.NOT_FOUND), bad.value
        with pytest.raises(grpc.RpcError) as unknown:
            channel.unary_unary("/migrate.v1.CoordinatorService/NoSuchCall")(b"", timeout=10)
        assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert f.coordinator.alive()
    assert {b.name for b in f.client().list_boards()} == {"boardA", "boardB"}


def test_metrics_count_moves_by_result(fleet):
    f = fleet()
    # Restart the coordinator with metrics on.
    f.coordinator.stop()
    config = f.write_config()
    config.write_text(config.read_text().replace(
        "[coordinator]\n", '[coordinator]\nmetrics_listen = "127.0.0.1:0"\n'))
    proc = f.spawn("coordinator-metrics", [
        *f.coordinator.argv[:-1], str(config)], r"coordinator listening on (\S+)")
    f.coordinator = proc
    client = f.client()
    client.start_component("counter", "boardA")
    move = client.create_move("counter", "boardB",
                              options=rpb.MoveOptions(mode=rpb.MOVE_MODE_STOP_COPY))
    for _ in client.watch_move(move.id):
        pass
    line = proc.process.stdout.readline().decode()
    assert line.startswith("metrics on "), line
    port = int(line.rsplit(":", 1)[1])
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert 'migrate_moves_total{result="done"} 1.0' in body
    assert "migrate_move_downtime_seconds_count 1.0" in body
    assert 'migrate_board_up{board="boardA"} 1.0' in body


def test_the_coordinators_move_defaults_fill_what_a_caller_leaves_unset(fleet):
    f = fleet()
    f.coordinator.stop()
    f.move_defaults = {"max_downtime_ms": 4321, "max_rounds": 3, "on_overshoot": "accept"}
    f.start_coordinator()
    client = f.client()
    client.start_component("counter", "boardA")
    move = client.create_move("counter", "boardB",
                              options=rpb.MoveOptions(max_rounds=5, link_grace_ms=1500))
    o = move.options
    assert (o.max_downtime_ms, o.on_overshoot, o.max_rounds, o.link_grace_ms) == \
        (4321, rpb.OVERSHOOT_POLICY_ACCEPT, 5, 1500)
    for _ in client.watch_move(move.id):
        pass
