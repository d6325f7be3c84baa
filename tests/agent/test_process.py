"""The agent as a process, as the lab runs it, and what the agent side imports."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from migrate import rpc
from migrate.v1 import agent_pb2 as apb
from migrate.v1 import agent_pb2_grpc
from migrate.v1 import resources_pb2 as rpb

from .conftest import DEADLINE

READY = re.compile(r"agent for (\S+) listening on (127\.0\.0\.1):(\d+)")


def readline(stream, timeout: float) -> str:
    box: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: box.put(stream.readline()), daemon=True).start()
    try:
        return box.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no line within {timeout} s") from None


def test_python_m_migrate_agent_prints_its_ready_line_and_stops_on_sigterm(boards, tmp_path):
    a = boards("boardA")
    stderr = open(tmp_path / "agent.stderr", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "migrate.agent", "--board-url", a.url, "--listen", "127.0.0.1:0",
         "--plaintext"],
        stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True)
    try:
        line = readline(process.stdout, DEADLINE)
        match = READY.fullmatch(line.rstrip("\n"))
        assert match, (f"unexpected ready line {line!r}; stderr:\n"
                       f"{(tmp_path / 'agent.stderr').read_text()}")
        assert match[1] == "boardA" and int(match[3]) != 0
        address = f"{match[2]}:{match[3]}"
        with grpc.insecure_channel(address, options=rpc.CHANNEL_OPTIONS) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=DEADLINE).status
            assert status == rpc.SERVING
            board = agent_pb2_grpc.AgentServiceStub(channel).GetBoard(
                apb.AgentServiceGetBoardRequest(), timeout=DEADLINE).board
            assert board.name == "boardA" and board.agent_address == address
        process.send_signal(signal.SIGTERM)
        assert process.wait(DEADLINE) == 0
        assert process.stdout.read() == ""          # exactly one line
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(DEADLINE)
        process.stdout.close()
        stderr.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_agent_without_its_board_serves_not_serving_and_stops_on_sigterm(tmp_path):
    board_port, agent_port = free_port(), free_port()    # nothing listens on board_port
    process = subprocess.Popen(
        [sys.executable, "-m", "migrate.agent", "--board-url",
         f"socket://127.0.0.1:{board_port}", "--listen", f"127.0.0.1:{agent_port}",
         "--plaintext"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{agent_port}",
                                   options=rpc.CHANNEL_OPTIONS) as channel:
            status = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=DEADLINE,
                wait_for_ready=True).status
            assert status == rpc.NOT_SERVING
            with pytest.raises(grpc.RpcError) as caught:
                agent_pb2_grpc.AgentServiceStub(channel).ListComponents(
                    apb.AgentServiceListComponentsRequest(), timeout=DEADLINE)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            board = agent_pb2_grpc.AgentServiceStub(channel).GetBoard(
                apb.AgentServiceGetBoardRequest(), timeout=DEADLINE).board
            assert board.health == rpb.BOARD_HEALTH_NOT_SERVING and board.health_detail
        process.send_signal(signal.SIGTERM)
        assert process.wait(DEADLINE) == 0
        assert process.stdout.read() == ""               # never ready: no line
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(DEADLINE)
        process.stdout.close()


def test_listen_address_in_use_is_a_clear_error(boards):
    a = boards("boardA")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "migrate.agent", "--board-url", a.url,
             "--listen", f"127.0.0.1:{port}", "--plaintext"],
            capture_output=True, text=True, timeout=DEADLINE)
    assert result.returncode == 2, result
    assert "cannot listen on" in result.stderr and result.stdout == ""


def test_agent_side_never_imports_the_emulator():
    code = ("import sys\n"
            "import genode_cr.client, genode_cr.aio_client, genode_cr.wire, "
            "genode_cr.checkpoint, migrate.agent, migrate.agent.server, migrate.convert\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('genode_cr.emu'))\n"
            "assert not loaded, loaded\n"
            "assert 'unicorn' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=DEADLINE)
    assert result.returncode == 0, result.stderr
