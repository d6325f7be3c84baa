"""Transfers that survive a dropped link: a checkpoint stream sent again from
any part, and restore sessions that outlive the agent's link."""

import re

import pytest

from genode_cr import errors, wire
from genode_cr.emu import Board, default_rom_dir
from genode_cr.service import BoardService
from genode_cr.v1 import board_pb2 as bpb

from .test_board_protocol import counts, wait_for

STEP = re.compile(r"^step (\d+) ")


def kvstore_steps(client):
    return [int(m[1]) for m in (STEP.match(l.text) for l in client.logs("kvstore")) if m]


def wire_bytes(parts):
    return [part.SerializeToString() for part in parts]


def assemble(parts):
    """A complete stream, checked: every page against its digest, and the root."""
    start, *chunks, end = parts
    assembler = wire.PackedAssembler(start)
    for chunk in chunks:
        assembler.add(chunk)
    return assembler.finish(end).unpack()


# --- the checkpoint stream ----------------------------------------------------------------------

def test_checkpoint_stream_resumes_from_any_part_with_the_same_bytes(boards):
    a = boards("boardA")
    with a.connect() as client:
        client.start("kvstore")
        wait_for(lambda: len(kvstore_steps(client)) >= 5)
        first = list(client.checkpoint_parts("kvstore"))
        checkpoint_id = first[0].manifest.id
        assert len(first) > 4, "kvstore's checkpoint spans several page chunks"
        middle = len(first) // 2
        for part in (middle, 1, len(first) - 1, 0):
            again = list(client.checkpoint_parts("kvstore", resume_id=checkpoint_id,
                                                 from_part=part))
            assert wire_bytes(again) == wire_bytes(first[part:]), part
        # Resuming took no checkpoint: the next incremental still follows the first.
        delta = list(client.checkpoint_parts("kvstore", since=checkpoint_id))
        assert delta[0].manifest.parent_id == checkpoint_id
        # Only the last checkpoint taken is kept, and none of a component killed.
        with pytest.raises(errors.RequestError, match="keeps only the last one"):
            list(client.checkpoint_parts("kvstore", resume_id=checkpoint_id, from_part=1))
        with pytest.raises(errors.RequestError, match="parts 0 to"):
            list(client.checkpoint_parts("kvstore", resume_id=delta[0].manifest.id,
                                         from_part=len(delta)))
        client.kill("kvstore")
        with pytest.raises(errors.UnknownComponent):
            list(client.checkpoint_parts("kvstore", resume_id=delta[0].manifest.id,
                                         from_part=1))
        client.start("kvstore")
        with pytest.raises(errors.RequestError, match="keeps no checkpoint"):
            list(client.checkpoint_parts("kvstore", resume_id=delta[0].manifest.id,
                                         from_part=1))


def test_checkpoint_stream_cut_with_its_link_resumes_over_the_next(boards):
    a = boards("boardA")
    client = a.connect()
    try:
        client.start("kvstore")
        wait_for(lambda: len(kvstore_steps(client)) >= 5)
        stream = client.checkpoint_parts("kvstore", freeze=True)
        received = [next(stream), next(stream)]
        stream.close()
    finally:
        client.close()                      # the link ends with the stream half sent
    with a.connect() as again:
        rest = list(again.checkpoint_parts("kvstore", resume_id=received[0].manifest.id,
                                           from_part=len(received)))
        checkpoint = assemble(received + rest)
        assert checkpoint.id == received[0].manifest.id and checkpoint.manifest.frozen
        assert [c.state for c in again.components()] == ["paused"]


# --- restore sessions across links -------------------------------------------------------------

def test_stage_cut_with_its_link_goes_on_over_a_new_one(boards):
    cut_after = 1                              # the start: its page chunk and end follow
    a, b = boards("boardA"), boards("boardB")
    with a.connect() as source:
        source.start("counter")
        wait_for(lambda: len(counts(source.logs("counter"))) >= 2)
        full = source.checkpoint_packed("counter")
        wait_for(lambda: len(counts(source.logs("counter"))) >= 4)
        delta = source.checkpoint_packed("counter", since=full, freeze=True)
        before = counts(source.logs("counter"))
        source.kill("counter")

    parts = list(wire.packed_messages(full))
    agent = b.connect()
    try:
        free = agent.info.ram_free
        session = agent.begin_restore()
        assert agent.stage_parts(session, parts[:cut_after]) is None
        status = agent.stage_status(session)   # answered after the parts before it
        assert (status.session, status.checkpoint_id, status.parts) == \
            (session, full.id, cut_after)
        assert (status.last_staged_id, status.rounds) == ("", 0)
    finally:
        agent.close()                          # the link dies; the board server runs on

    with b.connect() as fresh:
        status = fresh.stage_status(session)
        assert (status.checkpoint_id, status.parts) == (full.id, cut_after)
        done = fresh.stage(session, full, from_part=status.parts)
        assert (done.rounds, done.pages_written) == (1, len(full.pages))
        status = fresh.stage_status(session)
        assert (status.checkpoint_id, status.parts, status.last_staged_id, status.rounds) == \
            ("", 0, full.id, 1)
        assert fresh.stage(session, delta).rounds == 2
        report = fresh.commit_restore(session)
        assert report.chain_length == 2 and report.checkpoint_id == delta.id
        wait_for(lambda: len(counts(fresh.logs("counter"))) >= 2)
        moved = counts(fresh.logs("counter"))
        assert moved[0] == before[-1] + 1
        assert moved == list(range(moved[0], moved[0] + len(moved)))
        assert fresh.hello().ram_free < free


def test_a_resumed_stage_must_not_start_again(boards):
    a = boards("boardA")
    with a.connect() as client:
        client.start("counter")
        wait_for(lambda: counts(client.logs("counter")))
        parts = list(client.checkpoint_parts("counter"))
        session = client.begin_restore("copy")
        with pytest.raises(errors.RequestError, match="not a CheckpointStart"):
            client.stage_parts(session, parts, resume=True)
        with pytest.raises(errors.RequestError, match="parts 0 to"):
            client.stage(session, client.checkpoint_packed("counter"), from_part=9)
        with pytest.raises(errors.RequestError, match="no restore session"):
            client.stage_status(session + 1)


# --- the service alone, on the clock it is given ---------------------------------------------

def _request(service: BoardService, **body) -> bpb.Response:
    *_, last = service.handle(bpb.Request(id=1, **body))
    assert last.WhichOneof("body") != "error", last.error
    return last


def _service_with(component: str, lines: int = 3) -> tuple[Board, BoardService]:
    board = Board("boardA", rom_dir=default_rom_dir())
    service = BoardService(board, orphan_timeout=60)
    board.cr.start(component)
    for _ in range(200):
        if len(board.log_entries(component)) >= lines:
            break
        board.run(0.05)
    return board, service


def _parts(responses) -> list:
    return [getattr(r, r.WhichOneof("body")) for r in responses]


def test_a_checkpoint_stream_dropped_half_way_is_kept_whole():
    board, service = _service_with("kvstore", lines=10)
    stream = service.handle(bpb.Request(id=1, checkpoint=bpb.CheckpointRequest(name="kvstore")))
    received = _parts([next(stream), next(stream)])
    stream.close()                             # the link ended; the server dropped the stream
    service.reset()
    board.run(0.2)                             # the component runs on meanwhile
    rest = _parts(service.handle(bpb.Request(id=2, checkpoint=bpb.CheckpointRequest(
        name="kvstore", resume_id=received[0].manifest.id, from_part=2))))
    assert len(rest) > 2
    assert assemble(received + rest).id == received[0].manifest.id


def test_orphaned_sessions_expire_unless_a_new_link_claims_them():
    board, service = _service_with("counter")
    parts = _parts(service.handle(bpb.Request(id=1, checkpoint=bpb.CheckpointRequest(
        name="counter"))))
    free = board.free_ram
    sessions = []
    for name in ("one", "two"):
        session = _request(service, restore_begin=bpb.RestoreBegin(name=name)
                           ).restore_session.session
        _request(service, stage_start=bpb.StageStart(session=session, checkpoint=parts[0]))
        for chunk in parts[1:-1]:
            list(service.handle(bpb.Request(id=2, stage_pages=bpb.StagePages(
                session=session, chunk=chunk))))
        _request(service, stage_end=bpb.StageEnd(session=session, end=parts[-1]))
        sessions.append(session)
    one, two = sessions
    held = free - board.free_ram
    assert held > 0 and len(board.cr.staged) == 2

    service.reset(now=100.0)                   # the agent's link ended
    assert service.expire_orphans(159.0) == []
    _request(service, stage_status=bpb.RestoreSession(session=two))   # a new link claims two
    assert service.expire_orphans(160.0) == [one]
    assert board.free_ram == free - held // 2 and len(board.cr.staged) == 1
    assert service.expire_orphans(1000.0) == []

    service.reset()                            # that link ends too; the clock starts at
    assert service.expire_orphans(2000.0) == []    # the next look
    assert service.expire_orphans(2059.0) == []
    assert service.expire_orphans(2060.0) == [two]
    assert board.free_ram == free and board.cr.staged == [] and board.cr.components()[0].name \
        == "counter"
