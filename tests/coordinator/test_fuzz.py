"""Fuzzing the request handling of a real coordinator and a real agent (TLS fleet, one
board running counter): random bytes and mutated serialized requests through generic
calls to every method of both services, as a privileged and an unprivileged identity,
and truncated, reordered and corrupted StageCheckpoint streams. Afterwards both servers
serve health, nothing changed (moves, components, checkpoints, audit of the privileged
calls aside), and counter still counts on its board.

Seeded: FUZZ_SEED=N reproduces a run; the seed is in every failure message. The default
is CI-fast; the `slow` variant makes ten times as many calls.
"""

from __future__ import annotations

import os
import random
import re
import time

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from migrate.security import COORDINATOR, Identity, Role
from migrate.v1 import agent_pb2 as apb
from migrate.v1 import coordinator_pb2 as pb

from .conftest import OPERATOR, VIEWER, counts, wait_for

COORDINATOR_SERVICE = pb.DESCRIPTOR.services_by_name["CoordinatorService"]
AGENT_SERVICE = apb.DESCRIPTOR.services_by_name["AgentService"]
AGENT = Identity(Role.AGENT, "boardA")
CALL_TIMEOUT = 5.0

#: A request per method that names nothing that exists: whatever a mutation makes of it
#: (short of guessing a name), a call changes nothing.
COORDINATOR_SEEDS = {
    "ListBoards": pb.ListBoardsRequest(),
    "ListComponents": pb.ListComponentsRequest(board="no-such-board"),
    "StartComponent": pb.StartComponentRequest(name="no-such-component", board="no-such-board",
                                               config="x=1", ram_quota_bytes=1 << 20),
    "KillComponent": pb.KillComponentRequest(name="no-such-component"),
    "StreamLogs": pb.StreamLogsRequest(name="no-such-component", tail=5),
    "PlanMove": pb.PlanMoveRequest(component="no-such-component", target_board="boardA"),
    "CreateMove": pb.CreateMoveRequest(component="no-such-component", target_board="boardB"),
    "GetMove": pb.GetMoveRequest(id="no-such-move"),
    "ListMoves": pb.ListMovesRequest(page_size=5, component="no-such-component"),
    "WatchMove": pb.WatchMoveRequest(id="no-such-move"),
    "CancelMove": pb.CancelMoveRequest(id="no-such-move"),
    "CreateCheckpoint": pb.CreateCheckpointRequest(component="no-such-component", full=True),
    "ListCheckpoints": pb.ListCheckpointsRequest(component="no-such-component"),
    "GetCheckpoint": pb.GetCheckpointRequest(id="no-such-checkpoint"),
    "VerifyCheckpoint": pb.VerifyCheckpointRequest(id="no-such-checkpoint"),
    "DeleteCheckpoint": pb.DeleteCheckpointRequest(id="no-such-checkpoint"),
    "RestoreCheckpoint": pb.RestoreCheckpointRequest(id="no-such-checkpoint",
                                                     target_board="no-such-board"),
    "ListAuditEvents": pb.ListAuditEventsRequest(page_size=3, identity="nobody"),
    "VerifyAuditLog": pb.VerifyAuditLogRequest(),
}
#: BeginRestore is left out of the privileged calls: an empty request is a valid one,
#: and opening a session is what it does (the stage fuzz below opens its own).
AGENT_SEEDS = {
    "GetBoard": apb.AgentServiceGetBoardRequest(),
    "ListComponents": apb.AgentServiceListComponentsRequest(),
    "StartComponent": apb.AgentServiceStartComponentRequest(name="no-such-component",
                                                            rom="no-such-rom", cap_quota=10),
    "PauseComponent": apb.AgentServicePauseComponentRequest(name="no-such-component"),
    "ResumeComponent": apb.AgentServiceResumeComponentRequest(name="no-such-component"),
    "KillComponent": apb.AgentServiceKillComponentRequest(name="no-such-component"),
    "StreamLogs": apb.AgentServiceStreamLogsRequest(name="no-such-component"),
    "Checkpoint": apb.AgentServiceCheckpointRequest(name="no-such-component",
                                                    since_id="no-such-checkpoint"),
    "StageCheckpoint": apb.AgentServiceStageCheckpointRequest(session=4_000_000_000),
    "GetStageStatus": apb.AgentServiceGetStageStatusRequest(session=4_000_000_000),
    "CommitRestore": apb.AgentServiceCommitRestoreRequest(session=4_000_000_000),
    "AbortRestore": apb.AgentServiceAbortRestoreRequest(session=4_000_000_000),
}
#: Session-bearing calls get random bytes only as an unprivileged caller: a mutated
#: session number could name the stage fuzz's session (they run at other times, but
#: small numbers are what boards hand out).
SESSION_CALLS = {"StageCheckpoint", "GetStageStatus", "CommitRestore", "AbortRestore"}


def seed() -> int:
    return int(os.environ.get("FUZZ_SEED") or random.SystemRandom().randrange(1 << 32))


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One of: random bytes, bit flips, insertions, deletions, truncation, a repeat, a
    huge varint field, or a length prefix that lies."""
    kind = rng.randrange(8)
    b = bytearray(data)
    if kind == 0 or not b:
        return rng.randbytes(rng.randrange(0, 96))
    if kind == 1:
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == 2:
        i = rng.randrange(len(b) + 1)
        b[i:i] = rng.randbytes(rng.randrange(1, 16))
    elif kind == 3:
        i = rng.randrange(len(b))
        del b[i:i + rng.randrange(1, 8)]
    elif kind == 4:
        del b[rng.randrange(len(b)):]
    elif kind == 5:
        b += bytes(b)
    elif kind == 6:                                 # field n, varint 2^64-1
        b += bytes([(rng.randrange(1, 16) << 3) | 0]) + b"\xff" * 9 + b"\x01"
    else:                                           # a length-delimited field claiming 2 GB
        b += bytes([(rng.randrange(1, 16) << 3) | 2]) + b"\xff\xff\xff\xff\x07" + b"x"
    return bytes(b)


def generic_call(channel: grpc.Channel, service, method: str, payload: bytes
                 ) -> grpc.RpcError | None:
    """The call with raw bytes as its request, as any gRPC client can make it."""
    descriptor = service.methods_by_name[method]
    path = f"/{service.full_name}/{method}"
    try:
        if descriptor.client_streaming:
            channel.stream_unary(path)(iter([payload]), timeout=CALL_TIMEOUT)
        elif descriptor.server_streaming:
            for _ in channel.unary_stream(path)(payload, timeout=CALL_TIMEOUT):
                pass
        else:
            channel.unary_unary(path)(payload, timeout=CALL_TIMEOUT)
    except grpc.RpcError as error:
        return error
    return None


def assert_not_a_crash(error: grpc.RpcError | None, what: str) -> None:
    """A refusal is fine; an exception our edge did not expect (INTERNAL with our
    ErrorInfo, or UNKNOWN: an unmapped exception) is a bug."""
    if error is None:
        return
    code = error.code()
    reason = ""
    status = rpc_status.from_call(error)
    if status is not None:
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                reason = info.reason
    assert code != grpc.StatusCode.UNKNOWN, f"{what}: UNKNOWN {error.details()}"
    assert not (code == grpc.StatusCode.INTERNAL and reason in ("INTERNAL", "")
                and "deserializ" not in (error.details() or "").lower()), \
        f"{what}: {code.name} {reason} {error.details()}"


def snapshot(f, channels) -> dict:
    operator = f.client(identity=OPERATOR)
    with channels["agent"]() as channel:
        listed = channel.unary_unary(
            f"/{AGENT_SERVICE.full_name}/ListComponents",
            request_serializer=apb.AgentServiceListComponentsRequest.SerializeToString,
            response_deserializer=apb.AgentServiceListComponentsResponse.FromString)(
                apb.AgentServiceListComponentsRequest(), timeout=CALL_TIMEOUT)
    return {
        "moves": [(m.id, m.phase) for m in operator.list_moves()],
        "components": sorted((c.name, c.board, c.state)
                             for c in operator.list_components().components),
        "agent components": sorted((c.name, c.state) for c in listed.components),
        "checkpoints": [c.id for c in operator.list_checkpoints()],
        "boards": [(b.name, b.health) for b in operator.list_boards()],
    }


def serving(f, channel_for) -> None:
    for name, make in channel_for.items():
        with make() as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=CALL_TIMEOUT)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, name


def stage_requests(parts: list[apb.AgentServiceCheckpointResponse], session: int
                   ) -> list[bytes]:
    out = []
    for part in parts:
        field = part.WhichOneof("part")
        if field in ("start", "pages", "end"):
            out.append(apb.AgentServiceStageCheckpointRequest(
                session=session, **{field: getattr(part, field)}).SerializeToString())
    return out


def stage_variant(rng: random.Random, requests: list[bytes]) -> tuple[str, list[bytes]]:
    kind = rng.randrange(6)
    if kind == 0:
        return "truncated", requests[:rng.randrange(len(requests))]
    if kind == 1:
        shuffled = requests[:]
        rng.shuffle(shuffled)
        return "reordered", shuffled
    if kind == 2:
        return "start twice", [requests[0], *requests]
    if kind == 3:
        return "end first", [requests[-1], *requests[:-1]]
    if kind == 4:
        i = rng.randrange(len(requests))
        return "a part mutated", [*requests[:i], mutate(rng, requests[i]), *requests[i + 1:]]
    other = apb.AgentServiceStageCheckpointRequest(session=12345).SerializeToString()
    return "another session", [requests[0], other, *requests[1:]]


def run_fuzz(f, calls: int, rng_seed: int) -> None:
    rng = random.Random(rng_seed)
    board = "boardA"
    agent_address = f.agents[board].address
    agent_server = Identity(Role.AGENT, board)
    channel_for = {
        "coordinator": lambda identity=OPERATOR: f.channel(identity=identity),
        "agent": lambda identity=COORDINATOR: f.channel(agent_address, identity=identity,
                                                        server=agent_server),
    }
    before = snapshot(f, channel_for)
    plan = [  # (server, identity, service, seeds, methods the fuzz may mutate valid requests of)
        ("coordinator", VIEWER, COORDINATOR_SERVICE, COORDINATOR_SEEDS, set(COORDINATOR_SEEDS)),
        ("coordinator", OPERATOR, COORDINATOR_SERVICE, COORDINATOR_SEEDS,
         set(COORDINATOR_SEEDS)),
        ("agent", Identity(Role.AGENT, "boardB"), AGENT_SERVICE, AGENT_SEEDS, set(AGENT_SEEDS)),
        ("agent", COORDINATOR, AGENT_SERVICE, AGENT_SEEDS, set(AGENT_SEEDS) - SESSION_CALLS),
    ]
    for server, identity, service, seeds, mutable in plan:
        with channel_for[server](identity) as channel:
            for i in range(calls):
                method = rng.choice(sorted(seeds))
                payload = (mutate(rng, seeds[method].SerializeToString()) if method in mutable
                           else rng.randbytes(rng.randrange(0, 64)) if identity != COORDINATOR
                           else b"")
                if method in SESSION_CALLS and identity == COORDINATOR:
                    payload = seeds[method].SerializeToString()   # the session no one has
                what = (f"seed {rng_seed}: call {i} {server} {method} as {identity.uri} "
                        f"with {payload.hex()}")
                assert_not_a_crash(generic_call(channel, service, method, payload), what)

    # Stage streams: a real checkpoint of counter, in broken shapes, into a session each.
    with channel_for["agent"]() as channel:
        parts = list(channel.unary_stream(
            f"/{AGENT_SERVICE.full_name}/Checkpoint",
            request_serializer=apb.AgentServiceCheckpointRequest.SerializeToString,
            response_deserializer=apb.AgentServiceCheckpointResponse.FromString)(
                apb.AgentServiceCheckpointRequest(name="counter"), timeout=60))
        begin = channel.unary_unary(
            f"/{AGENT_SERVICE.full_name}/BeginRestore",
            request_serializer=apb.AgentServiceBeginRestoreRequest.SerializeToString,
            response_deserializer=apb.AgentServiceBeginRestoreResponse.FromString)
        abort = channel.unary_unary(
            f"/{AGENT_SERVICE.full_name}/AbortRestore",
            request_serializer=apb.AgentServiceAbortRestoreRequest.SerializeToString,
            response_deserializer=apb.AgentServiceAbortRestoreResponse.FromString)
        stage = channel.stream_unary(f"/{AGENT_SERVICE.full_name}/StageCheckpoint")
        for i in range(max(4, calls // 10)):
            session = begin(apb.AgentServiceBeginRestoreRequest(name="fuzz-restored"),
                            timeout=CALL_TIMEOUT).session
            kind, requests = stage_variant(rng, stage_requests(parts, session))
            try:
                stage(iter(requests), timeout=30)
                error = None
            except grpc.RpcError as e:
                error = e
            assert_not_a_crash(error, f"seed {rng_seed}: stage stream {i} ({kind})")
            try:
                abort(apb.AgentServiceAbortRestoreRequest(session=session), timeout=CALL_TIMEOUT)
            except grpc.RpcError as e:             # the agent may have aborted it already
                assert e.code() in (grpc.StatusCode.NOT_FOUND,
                                    grpc.StatusCode.FAILED_PRECONDITION), e

    for proc in (f.coordinator, f.agents[board], f.boards[board]):
        assert proc.alive(), f"seed {rng_seed}: {proc.role} died:\n{proc.log_text()[-3000:]}"
    serving(f, channel_for)
    assert snapshot(f, channel_for) == before, f"seed {rng_seed}: the fleet changed"
    client = f.client(identity=VIEWER)
    seen = len(counts(x.text for x in client.stream_logs("counter")))
    wait_for(lambda: len(counts(x.text for x in client.stream_logs("counter"))) > seen, 60,
             f"seed {rng_seed}: counter counting on after the fuzz")
    for proc in (f.coordinator, f.agents[board]):
        crashes = re.findall(r"internal error|Traceback", proc.log_text())
        assert not crashes, f"seed {rng_seed}: {proc.role} logged:\n{proc.log_text()[-4000:]}"


@pytest.fixture
def fuzzed_fleet(fleet):
    f = fleet(boards=("boardA", "boardB"))
    client = f.client()
    client.start_component("counter", "boardA")
    wait_for(lambda: len(counts(x.text for x in client.stream_logs("counter"))) >= 2, 60,
             "counter counting")
    return f


def test_fuzzed_requests_crash_nothing_and_change_nothing(fuzzed_fleet):
    started = time.monotonic()
    run_fuzz(fuzzed_fleet, 120, seed())
    assert time.monotonic() - started < 600       # a guard against a hang, not a timing


@pytest.mark.slow
def test_fuzzed_requests_long(fuzzed_fleet):
    run_fuzz(fuzzed_fleet, 1500, seed())
