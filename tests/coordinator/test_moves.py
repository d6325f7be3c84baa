"""Moves through real agents and a real coordinator, boards as processes on
921600-baud lines: the component continues exactly and, whatever fails, runs
on exactly one board afterwards."""

from __future__ import annotations

import threading

import grpc
import pytest

from migrate import errors
from migrate.v1 import resources_pb2 as rpb

from .conftest import MOVE_DEADLINE, counts, wait_for

TERMINAL = {rpb.MOVE_PHASE_DONE, rpb.MOVE_PHASE_FAILED, rpb.MOVE_PHASE_ROLLED_BACK,
            rpb.MOVE_PHASE_CANCELLED}


class Follower:
    """``migrate logs -f`` in a thread: every line, with the board it came from.
    It ends when the fleet's clients are closed at teardown."""

    def __init__(self, client, name: str):
        self.lines: list[rpb.LogLine] = []
        self._stream = client.stream_logs(name, follow=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for line in self._stream:
                self.lines.append(line)
        except Exception:  # noqa: BLE001 - cancelled at the end of the test
            pass

    def counts_on(self, board: str) -> list[int]:
        return counts([line.text for line in self.lines if line.board == board])



def finish(client, move_id: str) -> rpb.Move:
    last = None
    for move in client.watch_move(move_id):
        last = move
    assert last is not None and last.phase in TERMINAL, last
    return last


def where(client, name: str) -> list[tuple[str, str]]:
    listing = client.list_components()
    return [(c.board, c.state) for c in listing.components if c.name == name]


def phases(move: rpb.Move) -> list[str]:
    return [rpb.MovePhase.Name(t.phase).removeprefix("MOVE_PHASE_").lower()
            for t in move.transitions]


def test_live_move_of_counter_continues_exactly(fleet):
    f = fleet()
    client = f.client()
    client.start_component("counter", "boardA")
    follower = Follower(client, "counter")
    wait_for(lambda: len(follower.counts_on("boardA")) >= 3, 60, "counter counting on boardA")

    move = client.create_move("counter", "boardB")
    assert move.source_board == "boardA"
    percents = []
    for snapshot in client.watch_move(move.id):
        percents.append(snapshot.progress.percent)
        last = snapshot
    assert last.phase == rpb.MOVE_PHASE_DONE, last.error
    assert percents == sorted(percents), "progress ran backwards"
    assert last.progress.percent == 100.0
    assert phases(last) == ["preflight", "pre_copy", "stop_and_copy", "commit", "confirm",
                            "done"]
    assert len(last.rounds) >= 2 and last.rounds[-1].final and not last.rounds[0].final
    assert last.stop_rule in ("downtime", "small-delta", "delta-grew", "max-rounds")
    # The final delta is a small part of the whole.
    assert last.rounds[-1].page_bytes < last.rounds[0].page_bytes
    assert 0 < last.downtime_ms < last.total_ms
    assert where(client, "counter") == [("boardB", "running")]

    wait_for(lambda: len(follower.counts_on("boardB")) >= 3, 60, "counter counting on boardB")
    on_a, on_b = follower.counts_on("boardA"), follower.counts_on("boardB")
    assert on_a == list(range(1, len(on_a) + 1)), on_a
    assert on_b[:3] == [on_a[-1] + 1, on_a[-1] + 2, on_a[-1] + 3], (on_a[-3:], on_b[:3])

    # The history keeps it, newest first.
    assert [m.id for m in client.list_moves("counter")][0] == move.id


def test_stop_copy_move_and_back(fleet):
    f = fleet()
    client = f.client()
    client.start_component("counter", "boardA")
    options = rpb.MoveOptions(mode=rpb.MOVE_MODE_STOP_COPY)
    there = finish(client, client.create_move("counter", "boardB", options=options).id)
    assert there.phase == rpb.MOVE_PHASE_DONE, there.error
    assert len(there.rounds) == 1 and there.rounds[0].final and there.stop_rule == "stop-copy"
    back = finish(client, client.create_move("counter", "boardA").id)
    assert back.phase == rpb.MOVE_PHASE_DONE, back.error
    assert where(client, "counter") == [("boardA", "running")]
    assert back.generation > there.generation


def test_bad_requests_are_refused_with_the_right_code(fleet):
    f = fleet()
    client = f.client()
    client.start_component("counter", "boardA")
    with pytest.raises(errors.NotFound):
        client.create_move("counter", "boardZ")
    with pytest.raises(errors.NotFound):
        client.create_move("nosuch", "boardB")
    with pytest.raises(errors.RequestError) as same:
        client.create_move("counter", "boardA")
    assert same.value.reason == "SAME_BOARD"
    with pytest.raises(errors.RequestError):
        client.create_move("", "boardB")
    with pytest.raises(errors.RequestError):
        client.create_move("x" * 5000, "boardB")
    with pytest.raises(errors.NotFound):
        client.get_move("0123456789ab")
    with pytest.raises(errors.RequestError):
        client.create_move("counter", "boardB", options=rpb.MoveOptions(max_rounds=999999))
    # One copy only: the same name cannot start on a second board.
    with pytest.raises(errors.AlreadyExists):
        client.start_component("counter", "boardB")
    # A target without room for the component fails preflight, naming the check.
    client.start_component("hog", "boardB", rom="counter", ram_quota_bytes=250 << 20)
    with pytest.raises(errors.PreflightFailed) as full:
        client.create_move("counter", "boardB")
    assert full.value.status == "FAILED_PRECONDITION"
    assert "ram" in str(full.value)
    assert where(client, "counter") == [("boardA", "running")]


def test_second_move_of_a_moving_component_is_aborted(fleet):
    f = fleet()
    client = f.client()
    client.start_component("kvstore", "boardA")
    first = client.create_move("kvstore", "boardB")
    with pytest.raises(errors.AlreadyMoving) as second:
        client.create_move("kvstore", "boardB")
    assert second.value.status == "ABORTED"
    finish(client, first.id)


def test_raw_grpc_caller_sees_status_and_error_info(fleet):
    from grpc_status import rpc_status
    from google.rpc import error_details_pb2
    from migrate.v1 import coordinator_pb2, coordinator_pb2_grpc

    f = fleet()
    with grpc.insecure_channel(f.coordinator.address) as channel:
        stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)
        with pytest.raises(grpc.RpcError) as failure:
            stub.GetMove(coordinator_pb2.GetMoveRequest(id="nope"), timeout=10)
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND
    status = rpc_status.from_call(failure.value)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == "UNKNOWN_MOVE" and info.domain == "genode-migrate"


def test_target_gone_mid_move_rolls_back_to_the_source(fleet):
    f = fleet()
    client = f.client()
    client.start_component("kvstore", "boardA")
    move = client.create_move("kvstore", "boardB",
                              options=rpb.MoveOptions(link_grace_ms=1000))
    wait_for(lambda: client.get_move(move.id).progress.bytes_sent > 0, 60, "pre-copy under way")
    f.agents["boardB"].kill()
    end = finish(client, move.id)
    assert end.phase == rpb.MOVE_PHASE_ROLLED_BACK
    assert end.error.reason == "UNAVAILABLE", end.error
    assert where(client, "kvstore") == [("boardA", "running")]


def test_cancel_during_pre_copy_leaves_it_running_on_the_source(fleet):
    f = fleet()
    client = f.client()
    client.start_component("kvstore", "boardA")
    move = client.create_move("kvstore", "boardB")
    wait_for(lambda: client.get_move(move.id).progress.bytes_sent > 0, 60, "pre-copy under way")
    client.cancel_move(move.id)
    end = finish(client, move.id)
    assert end.phase == rpb.MOVE_PHASE_CANCELLED and end.cancel_requested
    assert where(client, "kvstore") == [("boardA", "running")]
    # Nothing is left staged on the target: a new move goes through.
    assert finish(client, client.create_move("kvstore", "boardB").id).phase \
        == rpb.MOVE_PHASE_DONE
    assert where(client, "kvstore") == [("boardB", "running")]


def test_downtime_budget_that_cannot_be_met_aborts(fleet):
    f = fleet()
    client = f.client()
    client.start_component("counter", "boardA")
    options = rpb.MoveOptions(max_downtime_ms=1, max_rounds=2)
    end = finish(client, client.create_move("counter", "boardB", options=options).id)
    assert end.phase == rpb.MOVE_PHASE_ROLLED_BACK
    assert end.error.reason == "DOWNTIME_OVERSHOOT"
    assert where(client, "counter") == [("boardA", "running")]
    accept = rpb.MoveOptions(max_downtime_ms=1, max_rounds=2,
                             on_overshoot=rpb.OVERSHOOT_POLICY_ACCEPT)
    end = finish(client, client.create_move("counter", "boardB", options=accept).id)
    assert end.phase == rpb.MOVE_PHASE_DONE and end.stop_rule
    assert end.predicted_downtime_ms > 1


@pytest.mark.slow
def test_coordinator_killed_mid_move_finishes_or_rolls_back(fleet):
    f = fleet()
    client = f.client()
    client.start_component("kvstore", "boardA")
    move = client.create_move("kvstore", "boardB")
    wait_for(lambda: client.get_move(move.id).progress.bytes_sent > 0, 60, "pre-copy under way")
    f.coordinator.kill()
    f.start_coordinator()
    client = f.client()
    end = wait_for(lambda: (m := client.get_move(move.id)).phase in TERMINAL and m,
                   MOVE_DEADLINE, "the journalled move to end")
    assert end.phase == rpb.MOVE_PHASE_ROLLED_BACK
    assert "restarted" in end.error.message
    assert where(client, "kvstore") == [("boardA", "running")]
