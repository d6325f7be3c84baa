"""The agent as a gRPC service: real board servers, real agents, real gRPC clients."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.message import Message

from genode_cr.v1 import board_pb2 as bpb
from migrate import convert, errors, rpc
from migrate.v1 import agent_pb2 as apb
from migrate.v1 import resources_pb2 as rpb

from .conftest import DEADLINE, assert_continues, counts, record_staged_pages, wait_for

SERVICE = "migrate.v1.AgentService"


def refused(call, request) -> tuple[grpc.StatusCode, Exception]:
    """The status code and our error (by ErrorInfo reason) of a call that must fail."""
    with pytest.raises(grpc.RpcError) as caught:
        result = call(request, timeout=DEADLINE)
        if not isinstance(result, Message):
            list(result)                     # a server stream fails while it is read
    return caught.value.code(), rpc.error_from_rpc(caught.value)


def log_texts(agent, name: str) -> list[str]:
    return [line.text for reply in agent.stub.StreamLogs(
        apb.AgentServiceStreamLogsRequest(name=name), timeout=DEADLINE) for line in reply.lines]


def counted(agent, name: str, want: int) -> list[int]:
    def enough():
        numbers = counts(log_texts(agent, name))
        return numbers if len(numbers) >= want else None
    return wait_for(enough, f"{want} count lines of {name}")


def take_checkpoint(agent, name: str, **options) -> list:
    return [convert.checkpoint_part_from_pb(reply) for reply in agent.stub.Checkpoint(
        apb.AgentServiceCheckpointRequest(name=name, **options), timeout=DEADLINE)]


def stage(agent, session: int, parts) -> apb.AgentServiceStageCheckpointResponse:
    return agent.stub.StageCheckpoint(iter([convert.stage_request(session, p) for p in parts]),
                                      timeout=DEADLINE)


# --- board, health, components -------------------------------------------------------------

def test_board_and_health(boards, agents):
    a = boards("boardA")
    agent = agents(a)
    board = agent.stub.GetBoard(apb.AgentServiceGetBoardRequest(), timeout=DEADLINE).board
    assert board.name == "boardA" and board.health == rpb.BOARD_HEALTH_SERVING
    assert board.agent_address == agent.address and board.protocol_version == 1
    assert (board.arch, board.kernel) == ("arm32", "foc")
    assert {rom.name for rom in board.roms} >= {"counter", "kvstore", "ticker"}
    assert all(len(rom.digest) == 32 and rom.size_bytes > 0 for rom in board.roms)
    assert 0 < board.ram_free_bytes <= board.ram_total_bytes
    assert agent.status("") == rpc.SERVING and agent.status(SERVICE) == rpc.SERVING


def test_component_lifecycle(boards, agents):
    agent = agents(boards("boardA"))
    started = agent.stub.StartComponent(apb.AgentServiceStartComponentRequest(
        name="counter", ram_quota_bytes=4 << 20, cap_quota=100), timeout=DEADLINE).component
    assert (started.name, started.board, started.rom, started.state) == \
        ("counter", "boardA", "counter", "running")
    assert (started.ram_quota_bytes, started.cap_quota) == (4 << 20, 100)
    listed = agent.stub.ListComponents(apb.AgentServiceListComponentsRequest(),
                                       timeout=DEADLINE).components
    assert [(c.name, c.board) for c in listed] == [("counter", "boardA")]
    paused = agent.stub.PauseComponent(apb.AgentServicePauseComponentRequest(name="counter"),
                                       timeout=DEADLINE).component
    assert paused.state == "paused"
    resumed = agent.stub.ResumeComponent(apb.AgentServiceResumeComponentRequest(name="counter"),
                                         timeout=DEADLINE).component
    assert resumed.state == "running"
    agent.stub.KillComponent(apb.AgentServiceKillComponentRequest(name="counter"),
                             timeout=DEADLINE)
    assert not agent.stub.ListComponents(apb.AgentServiceListComponentsRequest(),
                                         timeout=DEADLINE).components


def test_board_refusals_keep_their_reason(boards, agents):
    agent = agents(boards("boardA"))
    code, error = refused(agent.stub.StartComponent,
                          apb.AgentServiceStartComponentRequest(name="x", rom="nothing"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and errors.reason_of(error) == "ROM_MISSING"
    code, error = refused(agent.stub.PauseComponent,
                          apb.AgentServicePauseComponentRequest(name="nothing"))
    assert code == grpc.StatusCode.NOT_FOUND and errors.reason_of(error) == "UNKNOWN_COMPONENT"
    agent.stub.StartComponent(apb.AgentServiceStartComponentRequest(name="counter"),
                              timeout=DEADLINE)
    code, error = refused(agent.stub.StartComponent,
                          apb.AgentServiceStartComponentRequest(name="counter"))
    assert code == grpc.StatusCode.ALREADY_EXISTS and errors.reason_of(error) == "NAME_IN_USE"
    code, error = refused(agent.stub.Checkpoint,
                          apb.AgentServiceCheckpointRequest(name="counter", since_id="nope"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and errors.reason_of(error) == "BAD_REQUEST"
    code, error = refused(agent.stub.StreamLogs, apb.AgentServiceStreamLogsRequest(name="nope"))
    assert code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("request_", [
    apb.AgentServiceStartComponentRequest(name=""),
    apb.AgentServiceStartComponentRequest(name="x" * 65),
    apb.AgentServiceStartComponentRequest(name="bad\nname"),
    apb.AgentServiceStartComponentRequest(name="counter", rom="r\x00m"),
    apb.AgentServiceStartComponentRequest(name="counter", ram_quota_bytes=1 << 60),
    apb.AgentServiceStartComponentRequest(name="counter", cap_quota=1 << 30),
    apb.AgentServiceStartComponentRequest(name="counter", config="x" * (65 << 10)),
    apb.AgentServicePauseComponentRequest(name=""),
    apb.AgentServiceKillComponentRequest(name="y" * 100),
    apb.AgentServiceStreamLogsRequest(name=""),
    apb.AgentServiceCheckpointRequest(name="counter", since_id="i" * 200),
    apb.AgentServiceBeginRestoreRequest(name="z" * 65),
    apb.AgentServiceCommitRestoreRequest(session=0),
    apb.AgentServiceAbortRestoreRequest(session=0),
], ids=lambda r: type(r).__name__.removeprefix("AgentService"))
def test_malformed_requests_are_invalid_arguments(pair, request_):
    agent = pair.source
    method = getattr(agent.stub, type(request_).__name__.removeprefix("AgentService")
                     .removesuffix("Request"))
    code, error = refused(method, request_)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, code
    assert errors.reason_of(error) == "BAD_REQUEST"
    # The agent and its board carry on.
    assert agent.status() == rpc.SERVING
    agent.stub.ListComponents(apb.AgentServiceListComponentsRequest(), timeout=DEADLINE)


# --- logs ----------------------------------------------------------------------------------

def test_stream_logs_batches_and_follow(boards, agents):
    a = boards("boardA")
    agent = agents(a)
    agent.stub.StartComponent(apb.AgentServiceStartComponentRequest(name="counter"),
                              timeout=DEADLINE)
    counted(agent, "counter", 3)
    replies = list(agent.stub.StreamLogs(apb.AgentServiceStreamLogsRequest(name="counter"),
                                         timeout=DEADLINE))
    lines = [line for reply in replies for line in reply.lines]
    assert [line.index for line in lines] == list(range(len(lines)))
    assert all(line.board == "boardA" for line in lines)
    assert replies[-1].next_index == len(lines)
    tail = list(agent.stub.StreamLogs(apb.AgentServiceStreamLogsRequest(
        name="counter", from_index=2), timeout=DEADLINE))
    assert [line.index for r in tail for line in r.lines][0] == 2

    follow = agent.stub.StreamLogs(apb.AgentServiceStreamLogsRequest(name="counter",
                                                                     follow=True))
    seen = []
    for reply in follow:
        seen.extend(reply.lines)
        if len(counts(line.text for line in seen)) >= len(counts(l.text for l in lines)) + 2:
            break
    follow.cancel()
    numbers = counts(line.text for line in seen)
    assert numbers == list(range(1, len(numbers) + 1))
    # The board's follow ended with the gRPC stream.
    wait_for(lambda: not a.server.service._followers, "the board's follow cancelled")


# --- checkpoints and restores ----------------------------------------------------------------

def test_counter_moves_through_two_agents(boards, agents):
    a, b = boards("boardA"), boards("boardB")
    source, target = agents(a), agents(b)
    staged = record_staged_pages(b)
    source.stub.StartComponent(apb.AgentServiceStartComponentRequest(name="counter",
                                                                     generation=1),
                               timeout=DEADLINE)
    counted(source, "counter", 2)
    full = take_checkpoint(source, "counter", generation=1)
    counted(source, "counter", 4)
    delta = take_checkpoint(source, "counter", since_id=full[0].manifest.id, freeze=True,
                            generation=1)
    assert isinstance(full[0], bpb.CheckpointStart) and isinstance(full[-1], bpb.CheckpointEnd)
    assert delta[0].manifest.parent_id == full[0].manifest.id and delta[0].manifest.frozen
    before = counts(log_texts(source, "counter"))

    session = target.stub.BeginRestore(apb.AgentServiceBeginRestoreRequest(),
                                       timeout=DEADLINE).session
    assert stage(target, session, full).rounds == 1
    done = stage(target, session, delta)
    assert done.rounds == 2 and done.pages_written >= full[0].page_count
    committed = target.stub.CommitRestore(apb.AgentServiceCommitRestoreRequest(
        session=session, generation=2), timeout=DEADLINE)
    assert committed.report.component == "counter" and committed.report.chain_length == 2
    assert committed.report.checkpoint_id == delta[0].manifest.id
    assert (committed.component.name, committed.component.board,
            committed.component.state) == ("counter", "boardB", "running")
    source.stub.KillComponent(apb.AgentServiceKillComponentRequest(name="counter",
                                                                   generation=1),
                              timeout=DEADLINE)

    sent = [page.SerializeToString() for part in full + delta
            if isinstance(part, bpb.PageChunk) for page in part.pages]
    assert staged == sent                   # the board's compressed pages, byte for byte
    assert_continues(before, counted(target, "counter", 2))


@pytest.fixture(scope="module")
def checkpoint_of_a(pair):
    """A live checkpoint of counter on board A (counter keeps running there)."""
    pair.source.stub.StartComponent(apb.AgentServiceStartComponentRequest(name="counter"),
                                    timeout=DEADLINE)
    counted(pair.source, "counter", 1)
    return take_checkpoint(pair.source, "counter")


@pytest.mark.parametrize("shape", ["pages-first", "no-end", "two-starts", "after-end",
                                   "mixed-sessions", "empty", "huge-chunk",
                                   "resumed-with-a-start"])
def test_malformed_stage_stream_is_refused_and_aborted(pair, checkpoint_of_a, shape):
    b, target, parts = pair.b, pair.target, checkpoint_of_a
    start, chunks, end = parts[0], parts[1:-1], parts[-1]
    session = target.stub.BeginRestore(apb.AgentServiceBeginRestoreRequest(),
                                       timeout=DEADLINE).session
    requests = {
        "pages-first": [*chunks, start, end],
        "no-end": [start, *chunks],
        "two-starts": [start, start, *chunks, end],
        "after-end": [start, *chunks, end, chunks[0]],
        "empty": [],
        "huge-chunk": [start, bpb.PageChunk(pages=[chunks[0].pages[0]] * 100), end],
        "mixed-sessions": [start, *chunks, end],
        "resumed-with-a-start": [start, *chunks, end],
    }[shape]
    messages = [convert.stage_request(session, p) for p in requests]
    if shape == "mixed-sessions":
        messages[1].session = session + 1
    if shape == "resumed-with-a-start":
        # A stream broken after its start: the board has part 0, part 1 must follow.
        refused(target.stub.StageCheckpoint, iter([convert.stage_request(session, start)]))
        messages[0].resume_from_part = 1
    code, error = refused(target.stub.StageCheckpoint, iter(messages))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, error)
    if shape == "no-end":      # a stream that stopped early is broken, not wrong: it stays
        status = target.stub.GetStageStatus(apb.AgentServiceGetStageStatusRequest(
            session=session), timeout=DEADLINE)
        assert (status.checkpoint_id, status.parts) == (start.manifest.id, len(requests))
    if shape in ("empty", "no-end"):     # nothing the agent aborts
        target.stub.AbortRestore(apb.AgentServiceAbortRestoreRequest(session=session),
                                 timeout=DEADLINE)
    wait_for(lambda: session not in b.server.service._sessions, "the session aborted")
    assert target.status() == rpc.SERVING


def test_checkpoint_stream_cancelled_by_its_reader(pair, checkpoint_of_a):
    agent = pair.source
    call = agent.stub.Checkpoint(apb.AgentServiceCheckpointRequest(name="counter"),
                                 timeout=DEADLINE)
    first = next(call)
    assert first.WhichOneof("part") == "start"
    call.cancel()
    # The rest of that checkpoint is dropped; the next one streams whole.
    parts = take_checkpoint(agent, "counter", since_id=first.start.manifest.id)
    assert parts[0].manifest.parent_id == first.start.manifest.id
    assert isinstance(parts[-1], bpb.CheckpointEnd)
    assert agent.status() == rpc.SERVING


# --- fencing ---------------------------------------------------------------------------------

def test_stale_generation_is_fenced(boards, agents):
    agent = agents(boards("boardA"))
    agent.stub.StartComponent(apb.AgentServiceStartComponentRequest(name="counter",
                                                                    generation=5),
                              timeout=DEADLINE)
    code, error = refused(agent.stub.PauseComponent,
                          apb.AgentServicePauseComponentRequest(name="counter", generation=4))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and isinstance(error, errors.Fenced)
    assert error.metadata["highest_generation"] == "5"
    code, error = refused(agent.stub.Checkpoint,
                          apb.AgentServiceCheckpointRequest(name="counter", generation=3))
    assert isinstance(error, errors.Fenced)
    code, error = refused(agent.stub.KillComponent,
                          apb.AgentServiceKillComponentRequest(name="counter", generation=1))
    assert isinstance(error, errors.Fenced)
    # The stale calls changed nothing.
    [component] = agent.stub.ListComponents(apb.AgentServiceListComponentsRequest(),
                                            timeout=DEADLINE).components
    assert component.state == "running"
    # Unfenced (0), the same and a newer generation are admitted; then 6 is the floor.
    agent.stub.PauseComponent(apb.AgentServicePauseComponentRequest(name="counter"),
                              timeout=DEADLINE)
    agent.stub.ResumeComponent(apb.AgentServiceResumeComponentRequest(name="counter",
                                                                      generation=5),
                               timeout=DEADLINE)
    agent.stub.PauseComponent(apb.AgentServicePauseComponentRequest(name="counter",
                                                                    generation=6),
                              timeout=DEADLINE)
    code, error = refused(agent.stub.ResumeComponent,
                          apb.AgentServiceResumeComponentRequest(name="counter", generation=5))
    assert isinstance(error, errors.Fenced)
    # Another component's generations are its own.
    agent.stub.StartComponent(apb.AgentServiceStartComponentRequest(name="ticker",
                                                                    generation=1),
                              timeout=DEADLINE)


def test_commit_with_stale_generation_is_fenced(boards, agents):
    a, b = boards("boardA"), boards("boardB")
    source, target = agents(a), agents(b)
    source.stub.StartComponent(apb.AgentServiceStartComponentRequest(name="counter"),
                               timeout=DEADLINE)
    counted(source, "counter", 1)
    parts = take_checkpoint(source, "counter", freeze=True)
    # boardB has seen generation 7 of counter (say, it ran there after a failover).
    target.stub.StartComponent(apb.AgentServiceStartComponentRequest(name="ticker",
                                                                     generation=1),
                               timeout=DEADLINE)
    code, _ = refused(target.stub.KillComponent,
                      apb.AgentServiceKillComponentRequest(name="counter", generation=7))
    assert code == grpc.StatusCode.NOT_FOUND           # admitted, but nothing to kill
    session = target.stub.BeginRestore(apb.AgentServiceBeginRestoreRequest(),
                                       timeout=DEADLINE).session
    stage(target, session, parts)
    code, error = refused(target.stub.CommitRestore,
                          apb.AgentServiceCommitRestoreRequest(session=session, generation=6))
    assert isinstance(error, errors.Fenced)
    assert [c.name for c in target.stub.ListComponents(
        apb.AgentServiceListComponentsRequest(), timeout=DEADLINE).components] == ["ticker"]
    target.stub.CommitRestore(apb.AgentServiceCommitRestoreRequest(session=session,
                                                                   generation=8),
                              timeout=DEADLINE)


# --- the board link going away --------------------------------------------------------------

def test_health_follows_the_board_link(boards, agents):
    a = boards("boardA")
    agent = agents(a)
    agent.stub.StartComponent(apb.AgentServiceStartComponentRequest(name="counter"),
                              timeout=DEADLINE)
    follow = agent.stub.StreamLogs(apb.AgentServiceStreamLogsRequest(name="counter",
                                                                     follow=True))
    next(follow)
    a.stop()
    wait_for(lambda: agent.status() == rpc.NOT_SERVING, "NOT_SERVING")
    assert agent.status(SERVICE) == rpc.NOT_SERVING
    with pytest.raises(grpc.RpcError) as caught:
        for _ in follow:
            pass
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    code, error = refused(agent.stub.ListComponents, apb.AgentServiceListComponentsRequest())
    assert code == grpc.StatusCode.UNAVAILABLE and errors.reason_of(error) == "UNAVAILABLE"
    board = agent.stub.GetBoard(apb.AgentServiceGetBoardRequest(), timeout=DEADLINE).board
    assert board.health == rpb.BOARD_HEALTH_NOT_SERVING and board.name == "boardA"
    assert board.health_detail

    a.start()                                # the same board, back on the same port
    wait_for(lambda: agent.status() == rpc.SERVING, "SERVING again")
    assert agent.status(SERVICE) == rpc.SERVING
    [component] = agent.stub.ListComponents(apb.AgentServiceListComponentsRequest(),
                                            timeout=DEADLINE).components
    assert component.name == "counter"
    board = agent.stub.GetBoard(apb.AgentServiceGetBoardRequest(), timeout=DEADLINE).board
    assert board.health == rpb.BOARD_HEALTH_SERVING and not board.health_detail


def test_restore_session_of_a_restarted_board_is_refused(boards, agents):
    a, b = boards("boardA"), boards("boardB")
    source, target = agents(a), agents(b)
    source.stub.StartComponent(apb.AgentServiceStartComponentRequest(name="counter"),
                               timeout=DEADLINE)
    counted(source, "counter", 1)
    parts = take_checkpoint(source, "counter")
    session = target.stub.BeginRestore(apb.AgentServiceBeginRestoreRequest(),
                                       timeout=DEADLINE).session
    b.stop()
    wait_for(lambda: target.status() == rpc.NOT_SERVING, "NOT_SERVING")
    b.start()
    wait_for(lambda: target.status() == rpc.SERVING, "SERVING again")
    code, error = refused(target.stub.StageCheckpoint,
                          iter([convert.stage_request(session, p) for p in parts]))
    # The board server that held it stopped, and with it the session.
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "no restore session" in str(error)
    assert not b.server.service._sessions and b.board.cr.staged == []
