"""Transfers through the agent that survive a broken stream or a dropped board link."""

from __future__ import annotations

import threading

import grpc
import pytest

from genode_cr.link import FaultProxy, Faults
from migrate import convert, errors, rpc
from migrate.v1 import agent_pb2 as apb

from .conftest import DEADLINE, assert_continues, counts, wait_for
from .test_agent import counted, log_texts, refused, stage, take_checkpoint


def stage_status(agent, session: int) -> apb.AgentServiceGetStageStatusResponse:
    return agent.stub.GetStageStatus(apb.AgentServiceGetStageStatusRequest(session=session),
                                     timeout=DEADLINE)


def begin(agent) -> int:
    return agent.stub.BeginRestore(apb.AgentServiceBeginRestoreRequest(),
                                   timeout=DEADLINE).session


def resume(agent, session: int, parts, first_part: int
           ) -> apb.AgentServiceStageCheckpointResponse:
    requests = [convert.stage_request(session, p) for p in parts]
    requests[0].resume_from_part = first_part
    return agent.stub.StageCheckpoint(iter(requests), timeout=DEADLINE)


def resume_refused(agent, session: int, parts, first_part: int) -> Exception:
    """Our error (by ErrorInfo reason) of a resumed stage that must fail."""
    with pytest.raises(grpc.RpcError) as caught:
        resume(agent, session, parts, first_part)
    return rpc.error_from_rpc(caught.value)


def blocked_stage(agent, session: int, first, rest, release: threading.Event):
    """A StageCheckpoint that sends ``first``, waits for ``release``, then sends ``rest``."""
    def requests():
        for part in first:
            yield convert.stage_request(session, part)
        release.wait(DEADLINE)
        for part in rest:
            yield convert.stage_request(session, part)
    return agent.stub.StageCheckpoint.future(requests(), timeout=DEADLINE)


def frozen_counter(source) -> tuple[list, list[int]]:
    """counter's frozen checkpoint on the source, and the counts it had logged."""
    source.stub.StartComponent(apb.AgentServiceStartComponentRequest(name="counter"),
                               timeout=DEADLINE)
    counted(source, "counter", 2)
    parts = take_checkpoint(source, "counter", freeze=True)
    return parts, counts(log_texts(source, "counter"))


def commit_and_check(target, session: int, before: list[int]) -> None:
    committed = target.stub.CommitRestore(apb.AgentServiceCommitRestoreRequest(
        session=session), timeout=DEADLINE)
    assert committed.component.state == "running"
    assert_continues(before, counted(target, "counter", 2))


def test_stage_cancelled_midway_goes_on_where_the_board_stopped(boards, agents):
    a, b = boards("boardA"), boards("boardB")
    source, target = agents(a), agents(b)
    parts, before = frozen_counter(source)
    session = begin(target)
    release = threading.Event()
    call = blocked_stage(target, session, parts[:1], parts[1:], release)
    wait_for(lambda: stage_status(target, session).parts == 1, "the start on the board")
    call.cancel()                               # the caller went away mid-stage
    release.set()
    with pytest.raises(grpc.FutureCancelledError):
        call.result()

    status = stage_status(target, session)      # the session is as the stream left it
    assert (status.session, status.checkpoint_id, status.parts) == \
        (session, parts[0].manifest.id, 1)
    assert (status.last_staged_id, status.rounds) == ("", 0)
    error = resume_refused(target, session, parts[2:], 2)
    assert isinstance(error, errors.PreconditionFailed)
    assert errors.reason_of(error) == "RESUME_MISMATCH"
    assert (error.metadata["parts"], error.metadata["last_staged_id"]) == ("1", "")

    done = resume(target, session, parts[1:], 1)
    assert (done.rounds, done.pages_written) == (1, parts[0].page_count)
    # Staged whole: a resume now says so, and where the board stands.
    error = resume_refused(target, session, parts[1:], 1)
    assert errors.reason_of(error) == "RESUME_MISMATCH"
    assert (error.metadata["parts"], error.metadata["last_staged_id"]) == \
        ("0", parts[0].manifest.id)
    commit_and_check(target, session, before)


def test_checkpoint_resumed_from_a_part_sends_the_same_bytes(boards, agents):
    agent = agents(boards("boardA"))
    agent.stub.StartComponent(apb.AgentServiceStartComponentRequest(name="kvstore"),
                              timeout=DEADLINE)
    wait_for(lambda: len(log_texts(agent, "kvstore")) >= 8, "kvstore at work")
    first = take_checkpoint(agent, "kvstore")
    checkpoint_id = first[0].manifest.id
    assert len(first) > 3
    for part in (len(first) // 2, len(first) - 1):
        again = take_checkpoint(agent, "kvstore", resume_id=checkpoint_id,
                                resume_from_part=part)
        assert [p.SerializeToString() for p in again] == \
            [p.SerializeToString() for p in first[part:]]
    code, error = refused(agent.stub.Checkpoint, apb.AgentServiceCheckpointRequest(
        name="kvstore", resume_id="not-the-last", resume_from_part=1))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "keeps only the last" in str(error)


def test_stage_goes_on_after_the_board_link_dropped(boards, agents):
    a = boards("boardA")
    # The target's board notices a silent line within a second (its default is 10 s).
    b = boards("boardB", link_options={"rto": 0.2, "dead_after": 1.0})
    source = agents(a)
    parts, before = frozen_counter(source)
    with FaultProxy(("127.0.0.1", b.port), Faults()) as line:
        target = agents(b, line.url, link_options={"rto": 0.2, "dead_after": 1.0})
        session = begin(target)
        release = threading.Event()
        call = blocked_stage(target, session, parts[:1], parts[1:], release)
        wait_for(lambda: stage_status(target, session).parts == 1, "the start on the board")

        line.cut(DEADLINE)                      # this connection stays silent: the link dies
        wait_for(lambda: target.status() == rpc.NOT_SERVING, "the agent losing its board")
        release.set()                           # the rest meets a dead link
        with pytest.raises(grpc.RpcError) as caught:
            call.result()
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE

        wait_for(lambda: target.status() == rpc.SERVING, "the agent reconnected")
        status = stage_status(target, session)  # the board kept the session for the new link
        assert (status.checkpoint_id, status.parts) == (parts[0].manifest.id, 1)
        assert resume(target, session, parts[status.parts:], status.parts).rounds == 1
        commit_and_check(target, session, before)


def test_idle_session_is_aborted_by_the_agent(boards, agents):
    a, b = boards("boardA"), boards("boardB")
    source, target = agents(a), agents(b, session_idle_timeout=0.5)
    parts = take_checkpoint_of_counter(source)
    free = b.board.free_ram
    session = begin(target)
    assert stage(target, session, parts).rounds == 1
    assert b.board.free_ram < free
    wait_for(lambda: session not in b.server.service._sessions, "the idle session aborted")
    assert b.board.free_ram == free and b.board.cr.staged == []
    code, _ = refused(target.stub.GetStageStatus,
                      apb.AgentServiceGetStageStatusRequest(session=session))
    assert code == grpc.StatusCode.NOT_FOUND


def take_checkpoint_of_counter(source) -> list:
    source.stub.StartComponent(apb.AgentServiceStartComponentRequest(name="counter"),
                               timeout=DEADLINE)
    counted(source, "counter", 1)
    return take_checkpoint(source, "counter")


def test_stage_status_of_unknown_sessions(pair):
    code, error = refused(pair.target.stub.GetStageStatus,
                          apb.AgentServiceGetStageStatusRequest(session=0))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, error = refused(pair.target.stub.GetStageStatus,
                          apb.AgentServiceGetStageStatusRequest(session=424242))
    assert code == grpc.StatusCode.NOT_FOUND

