"""Bad input and broken peers: clear errors, and the board keeps serving."""

import os
import socket
import struct
import threading

import pytest

from genode_cr import errors
from genode_cr.client import BoardClient
from genode_cr.emu import Board, default_rom_dir
from genode_cr.link import (MIN_MESSAGE_LIMIT, BlockingLink, Flag, Frame, FrameKind, Link,
                            LinkRefused, encode_frame)
from genode_cr.link._cobs import cobs_decode, cobs_encode
from genode_cr.service import BoardService
from genode_cr.v1 import board_pb2 as bpb

from ._rogue import BoardProcess, RoguePeer, drive_until_failed
from .conftest import KeepOpen, RunningBoard
from .test_board_protocol import counts, wait_for


def raw_request(link: BlockingLink, payload: bytes, timeout=10.0) -> bpb.Response:
    link.send(payload, timeout=timeout)
    response = bpb.Response()
    response.ParseFromString(link.receive(timeout=timeout))
    return response


def test_garbage_on_the_line_is_survived(memory_boards):
    a = memory_boards()
    with a.connect() as client:
        client.start("counter")
        stats = a._link.stats
        garbage, dropped = stats.garbage_bytes, stats.dropped_frames
        port = a.client_port
        port.write(os.urandom(3000))                        # noise with no delimiter
        port.write(b"\x00" + os.urandom(200) + b"\x00")      # a torn or foreign frame
        port.write(b"\x01" * 70000 + b"\x00")                # far over the frame limit
        wait_for(lambda: stats.garbage_bytes > garbage and stats.dropped_frames > dropped)
        assert [c.name for c in client.components()] == ["counter"]
        wait_for(lambda: len(counts(client.logs("counter"))) >= 2)


def test_frames_with_a_bad_crc_are_dropped(memory_boards):
    a = memory_boards()
    with a.connect() as client:
        board_stats = a._link.stats
        dropped = board_stats.dropped_crc
        frame = encode_frame(Frame(kind=FrameKind.DATA, epoch=client.link.link.our_epoch,
                                   peer_epoch=client.link.link.peer_epoch, seq=1,
                                   payload=bpb.Request(id=99, kill=bpb.ComponentRequest(
                                       name="x")).SerializeToString()))
        # Flip one bit of the last payload byte before the CRC, then re-encode:
        # the block decodes and parses, and only the CRC check can reject it.
        body = bytearray(cobs_decode(frame.rstrip(b"\x00")))
        body[-5] ^= 0x01
        a.client_port.write(cobs_encode(bytes(body)) + b"\x00")
        client.start("counter")
        wait_for(lambda: board_stats.dropped_crc > dropped)
        assert [c.name for c in client.components()] == ["counter"]


def test_unknown_and_undecodable_requests_get_error_replies(memory_boards):
    a = memory_boards()
    link = BlockingLink(KeepOpen(a.client_port))
    try:
        # A request of a type from the future: field 99 is no body we know.
        future = bpb.Request(id=7).SerializeToString() + b"\x98\x06\x01"
        reply = raw_request(link, future)
        assert (reply.id, reply.error.code) == (7, "protocol_error")
        assert "unknown request" in reply.error.message

        reply = raw_request(link, b"\xff\xff\xff\xff garbage")
        assert (reply.id, reply.error.code) == (0, "protocol_error")

        reply = raw_request(link, bpb.Request(id=8, hello=bpb.Hello(protocol_version=1))
                            .SerializeToString())
        assert reply.board_info.name == "boardA"
    finally:
        link.close()


def test_garbage_from_a_stray_tcp_client_is_survived():
    board = RunningBoard("boardA", "tcp")
    try:
        host, port = board.url.removeprefix("socket://").split(":")
        with socket.create_connection((host, int(port))) as stray:
            stray.sendall(os.urandom(5000) + b"\x00" * 3)
        # One link at a time: this waits for the stray's link to end.
        with board.connect() as client:
            assert client.info.name == "boardA"
            client.start("counter")
            assert client.components()[0].state == "running"
    finally:
        board.shutdown()


def test_board_restarting_mid_transfer(memory_boards):
    a = memory_boards(baud=115200)
    with a.connect(timeout=20) as client:
        # 256 KiB of incompressible pages: about 25 s of line, so the restart as the
        # stream starts comes long before its end.
        client.start("kvstore", config="table_kib=256; fill=random")
        wait_for(lambda: any(line.text.startswith("kvstore filled")
                                for line in client.logs("kvstore")), timeout=30)
        restarted = threading.Event()

        def restart_as_the_stream_starts(done: int, total: int) -> None:
            if not restarted.is_set():
                restarted.set()
                a.shutdown()
                a.boot()

        with pytest.raises(errors.BoardUnreachable, match="restarted|closed"):
            client.checkpoint("kvstore", freeze=True, progress=restart_as_the_stream_starts)
        assert restarted.is_set()
        info = client.hello()                 # the line carries on, to the new board
        assert info.name == "boardA"
        assert client.components() == []


def test_agent_restarting_mid_restore_leaves_the_target_as_it_was(memory_boards):
    a, b = memory_boards("boardA"), memory_boards("boardB", orphan_timeout=0.5)
    with a.connect() as source:
        source.start("counter")
        wait_for(lambda: counts(source.logs("counter")))
        checkpoint = source.checkpoint("counter")
    agent = b.connect()
    free = agent.info.ram_free
    session = agent.begin_restore()
    agent.stage(session, checkpoint)
    assert agent.hello().ram_free < free, "a staged restore holds its quota"
    agent.link.close()                        # the agent dies; a new one comes up
    with b.connect() as fresh:
        # Nobody claims the orphaned session: once its time is up the board aborts it.
        wait_for(lambda: fresh.hello().ram_free == free)
        assert fresh.components() == [] and b.board.cr.staged == []
        with pytest.raises(errors.RequestError, match="no restore session"):
            fresh.stage_status(session)


def test_dead_board_is_reported_within_the_timeout(memory_boards):
    a = memory_boards()
    client = a.connect(timeout=2)
    try:
        a.server.stop_event.set()             # the board stops answering
        a.thread.join(5)
        with pytest.raises(errors.BoardUnreachable):
            client.components()
    finally:
        client.close()


# --- a board process outlives every bad peer ---------------------------------------------
#
# One `genode-cr board serve` process for these tests, running a counter: each
# test attacks it over TCP and then checks that the process lives on, serves a
# normal client, and the counter is still running and counting.


@pytest.fixture(scope="module")
def board_process(tmp_path_factory):
    board = BoardProcess("boardX", tmp_path_factory.mktemp("board") / "boardX.stderr")
    try:
        with BoardClient.connect(board.url) as client:
            client.start("counter")
            wait_for(lambda: counts(client.logs("counter")))
        yield board
    finally:
        board.stop()


@pytest.fixture
def attacked(board_process):
    """The board process; after the test, it must still serve and count."""
    yield board_process
    assert board_process.alive(), f"the board stopped:\n{board_process.stderr()}"
    with BoardClient.connect(board_process.url) as client:
        assert client.info.name == "boardX"
        assert [(c.name, c.state) for c in client.components()] == [("counter", "running")]
        before = len(counts(client.logs("counter")))
        wait_for(lambda: len(counts(client.logs("counter"))) > before)
    assert "Traceback" not in board_process.stderr()


@pytest.mark.parametrize("max_payload, max_message, reason", [
    (31, 1 << 20, b"max_payload 31 < min 32"),
    (1024, 100, b"max_message 100 < min 65536"),
])
def test_a_sync_below_the_minimums_is_refused_with_a_reason(attacked, max_payload, max_message,
                                                            reason):
    with RoguePeer(attacked.address) as rogue:
        rogue.sync(max_payload, max_message)
        reset = rogue.reset_and_hang_up()
    assert (reset.peer_epoch, reset.payload) == (rogue.epoch, reason)


def test_an_agent_announcing_a_tiny_message_limit_gets_a_typed_refusal(attacked):
    agent = Link(epoch=0xA6E47, handshake_timeout=None)
    agent.max_message = 100            # not a conforming agent: Link(max_message=100) is refused
    with pytest.raises(LinkRefused, match="refused by the peer: max_message 100 < min 65536"):
        drive_until_failed(agent, attacked.address)


def test_a_message_over_the_boards_limit_ends_only_that_link(attacked):
    with RoguePeer(attacked.address) as rogue:
        rogue.handshake()
        rogue.send_message(bytes((1 << 20) + 1))
        reset = rogue.reset_and_hang_up()
    assert reset.peer_epoch == rogue.epoch
    assert b"over the announced limit of 1048576" in reset.payload


def test_a_request_with_id_0_is_refused_not_served(attacked):
    with RoguePeer(attacked.address) as rogue:
        rogue.handshake()
        rogue.send_message(bpb.Request(id=0, kill=bpb.ComponentRequest(name="counter"))
                           .SerializeToString())
        reply = bpb.Response.FromString(rogue.receive_message())
        assert (reply.id, reply.last, reply.error.code) == (0, True, "protocol_error")
        assert "request id 0" in reply.error.message
        rogue.send_message(bpb.Request(id=1, list_components=bpb.Empty()).SerializeToString())
        reply = bpb.Response.FromString(rogue.receive_message())
        assert reply.id == 1
        assert [c.name for c in reply.components.components] == ["counter"]   # not killed


def test_an_ack_for_frames_never_sent_changes_nothing(attacked):
    with RoguePeer(attacked.address) as rogue:
        rogue.handshake()
        rogue.send(FrameKind.ACK, flags=Flag.PROBE, ack=1000)
        rogue.send(FrameKind.ACK, ack=0xFFFFFFFF)
        # The session goes on as if they never came: the board's DATA still starts at 0.
        rogue.send_message(bpb.Request(id=1, hello=bpb.Hello(protocol_version=1))
                           .SerializeToString())
        reply = bpb.Response.FromString(rogue.receive_message())
        assert reply.board_info.name == "boardX"


def test_a_forged_refusal_of_the_board_ends_only_that_link(attacked):
    with RoguePeer(attacked.address) as rogue:
        board_sync = rogue.next_frame(lambda f: f.kind is FrameKind.SYNC)
        rogue.board_epoch = board_sync.epoch
        rogue.send(FrameKind.RESET, payload=b"refused: go away")
        with pytest.raises(EOFError):
            rogue.next_frame()


def test_a_connection_reset_at_once_is_survived(attacked):
    for _ in range(3):
        sock = socket.create_connection(attacked.address)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()                   # RST instead of FIN


def test_garbage_then_hang_up_is_survived(attacked):
    with socket.create_connection(attacked.address) as stray:
        stray.sendall(os.urandom(20000) + b"\x00" * 3 + b"\x01" * 70000 + b"\x00")


# --- in-process cases ----------------------------------------------------------------------


def test_an_answer_over_the_agents_message_limit_fails_its_request_not_the_link(tmp_path):
    roms = tmp_path / "roms"
    roms.mkdir()
    (roms / "counter").write_bytes((default_rom_dir() / "counter").read_bytes())
    for i in range(1200):               # a BoardInfo of about 100 KiB
        (roms / f"module-{i:04d}-{'x' * 40}").write_bytes(b"\x00")
    board = RunningBoard("boardA", "memory", rom_dir=roms)
    link = BlockingLink(KeepOpen(board.client_port), max_message=MIN_MESSAGE_LIMIT)
    try:
        reply = raw_request(link, bpb.Request(id=1, hello=bpb.Hello(protocol_version=1))
                            .SerializeToString())
        assert (reply.id, reply.last, reply.error.code) == (1, True, "bad_request")
        assert f"over the {MIN_MESSAGE_LIMIT} bytes" in reply.error.message
        reply = raw_request(link, bpb.Request(id=2, start=bpb.StartRequest(name="counter"))
                            .SerializeToString())
        assert reply.component.state == "running"
    finally:
        link.close()
        board.shutdown()


def test_a_request_with_id_0_is_refused_in_process(memory_boards):
    a = memory_boards()
    link = BlockingLink(KeepOpen(a.client_port))
    try:
        reply = raw_request(link, bpb.Request(id=0, start=bpb.StartRequest(name="counter"))
                            .SerializeToString())
        assert (reply.id, reply.error.code) == (0, "protocol_error")
        assert a.board.cr.components() == []
    finally:
        link.close()


def test_every_tcp_connection_is_a_new_link_with_a_new_epoch():
    board = RunningBoard("boardA", "tcp")
    try:
        epochs = []
        for _ in range(2):
            link = BlockingLink.open(board.url)
            try:
                epochs.append(link.link.peer_epoch)
                reply = raw_request(link, bpb.Request(id=1, hello=bpb.Hello(protocol_version=1))
                                    .SerializeToString())
                assert reply.board_info.name == "boardA"
            finally:
                link.close()
        assert epochs[0] != epochs[1] and 0 not in epochs
    finally:
        board.shutdown()


def test_log_batches_fit_the_smallest_message_limit_an_agent_may_announce():
    board = Board("boardA")
    service = BoardService(board)
    board.cr.start("counter", "counter")
    wide = "\ufffd" * 256                 # 768 bytes as UTF-8: the widest line a component writes
    for _ in range(300):
        board.log_line("counter", wide)
    follow = bpb.Request(id=1, logs=bpb.LogsRequest(name="counter", follow=True))
    logs = list(service.handle(follow))
    for _ in range(300):
        board.log_line("counter", wide)
    followed = service.poll_followers()
    while more := service.poll_followers():          # one batch per poll and follow
        followed += more
    for response in logs + followed:
        assert response.id == 1 and not response.last
        assert len(response.SerializeToString()) <= MIN_MESSAGE_LIMIT
    assert len(logs) > 2 and len(followed) > 2
    texts = [line.text for r in logs + followed for line in r.log_lines.lines]
    assert texts == board.log("counter")
