"""Bad input and broken peers: clear errors, and the board keeps serving."""

import os
import socket
import threading
import time

import pytest

from genode_cr import errors
from genode_cr.link import BlockingLink, Frame, FrameKind, encode_frame
from genode_cr.link._cobs import cobs_decode, cobs_encode
from genode_cr.v1 import board_pb2 as bpb

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
        time.sleep(0.2)
        with board.connect() as client:
            assert client.info.name == "boardA"
            client.start("counter")
            assert client.components()[0].state == "running"
    finally:
        board.shutdown()


def test_board_restarting_mid_transfer(memory_boards):
    a = memory_boards(baud=115200)
    with a.connect(timeout=20) as client:
        client.start("kvstore")
        time.sleep(1.5)
        threading.Timer(0.4, lambda: (a.shutdown(), a.boot())).start()
        with pytest.raises(errors.BoardUnreachable, match="restarted|closed"):
            client.checkpoint("kvstore", freeze=True)
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
