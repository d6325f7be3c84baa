"""The bounds of migrate.limits on requests: each violation is a RequestError naming
its bound, and requests within them pass."""

from __future__ import annotations

import asyncio

import pytest

from genode_cr.v1 import board_pb2 as bpb
from genode_cr.v1 import checkpoint_pb2 as ckpb
from migrate import limits
from migrate.errors import RequestError
from migrate.v1 import agent_pb2 as apb
from migrate.v1 import coordinator_pb2 as pb
from migrate.v1 import resources_pb2 as rpb


@pytest.mark.parametrize("request_, bound", [
    (pb.StartComponentRequest(name="x" * 65, board="boardA"), "MAX_NAME_LENGTH"),
    (pb.StartComponentRequest(name="counter", board="board\nA"), "not printable"),
    (pb.StartComponentRequest(name="c", board="b", config="x" * (64 << 10 | 1)),
     "MAX_CONFIG_BYTES"),
    (pb.StartComponentRequest(name="c", board="b", ram_quota_bytes=1 << 41), "MAX_RAM_QUOTA"),
    (pb.GetMoveRequest(id="m" * 129), "MAX_ID_LENGTH"),
    (pb.ListMovesRequest(page_size=501), "MAX_PAGE_SIZE"),
    (pb.ListMovesRequest(page_token="\x00"), "not printable"),
    (pb.StreamLogsRequest(name="c", tail=10**6), "MAX_LOG_TAIL"),
    (pb.CreateMoveRequest(component="c", target_board="b",
                          options=rpb.MoveOptions(max_downtime_ms=4_000_000)), "MAX_DOWNTIME_MS"),
    (pb.CreateMoveRequest(component="c", target_board="b",
                          options=rpb.MoveOptions(link_grace_ms=4_000_000)),
     "MAX_LINK_GRACE_MS"),
    (pb.ListAuditEventsRequest(identity="i" * 200), "MAX_ID_LENGTH"),
    (apb.AgentServiceStageCheckpointRequest(session=1, resume_from_part=1 << 20),
     "MAX_STREAM_MESSAGES"),
])
def test_each_bound_is_named_in_its_refusal(request_, bound):
    with pytest.raises(RequestError, match=bound):
        limits.check_request(request_)


def test_requests_within_the_bounds_pass():
    limits.check_request(pb.StartComponentRequest(name="x" * 64, board="boardA",
                                                  config="x" * (64 << 10)))
    limits.check_request(pb.ListMovesRequest(page_size=500))
    # genode_cr's messages inside ours are the agent's and the board's to check
    limits.check_request(apb.AgentServiceStageCheckpointRequest(
        session=1, start=bpb.CheckpointStart(manifest=ckpb.Manifest(component="x" * 500))))


def test_a_client_stream_is_held_to_its_bounds(monkeypatch):
    monkeypatch.setattr(limits, "MAX_STREAM_MESSAGES", 3)

    async def messages(n):
        for _ in range(n):
            yield apb.AgentServiceStageCheckpointRequest(session=1)

    async def drain(n):
        return [m async for m in limits.bounded_stream(messages(n), "StageCheckpoint")]

    assert len(asyncio.run(drain(3))) == 3
    with pytest.raises(RequestError, match="MAX_STREAM_MESSAGES"):
        asyncio.run(drain(4))
    monkeypatch.setattr(limits, "MAX_STREAM_BYTES", 5)
    with pytest.raises(RequestError, match="MAX_STREAM_BYTES"):
        asyncio.run(drain(3))
