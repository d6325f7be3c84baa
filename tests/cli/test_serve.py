"""`genode-cr board serve` as a process, and `logs --follow` against it."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from .conftest import GENODE_CR, STARTUP_DEADLINE, counts, failed, ok, readline


def test_serve_reports_its_url_takes_its_options_and_stops_on_sigterm(board_server, cli):
    board = board_server("boardS", "--ram", "64M", "--caps", "1000", "--baud", "921600",
                         "--tracking-unit-pages", "2", json_output=True)
    info = json.loads(ok(cli("-b", board.url, "-O", "json", "info")).stdout)["board"]
    assert (info["name"], info["ram_total"], info["caps_total"], info["baud"]) == \
        ("boardS", 64 << 20, 1000, 921600)
    board.process.send_signal(signal.SIGTERM)
    assert board.process.wait(timeout=STARTUP_DEADLINE) == 0
    assert "Traceback" not in board.stderr()
    assert board.process.stdout.read() == b"", "serve printed more than its one line"


def test_serve_stops_on_sigint(board_server):
    board = board_server("boardS")
    board.process.send_signal(signal.SIGINT)
    assert board.process.wait(timeout=STARTUP_DEADLINE) == 0
    assert "Traceback" not in board.stderr()


def test_serve_refuses_a_missing_rom_dir(cli, tmp_path):
    failed(cli("board", "serve", "--name", "x", "--uart", "socket://127.0.0.1:0",
               "--rom-dir", tmp_path / "missing"), 2)


@pytest.mark.slow
def test_follow_streams_until_interrupted_and_frees_the_board(board_server, cli, cli_env,
                                                              processes):
    board = board_server("boardA")
    ok(cli("-b", board.url, "start", "counter"))
    follower = subprocess.Popen([*GENODE_CR, "-b", board.url, "logs", "counter", "-f"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env,
                                start_new_session=True)
    processes.append(follower)
    lines = [readline(follower.stdout, STARTUP_DEADLINE) for _ in range(4)]
    numbers = [n for n, _ in counts("".join(lines))]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 3, lines
    follower.send_signal(signal.SIGINT)
    assert follower.wait(timeout=STARTUP_DEADLINE) == 130
    stderr = follower.stderr.read().decode()
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] == "error: interrupted"
    # The follow was cancelled and the link closed: the board takes the next agent.
    ps = json.loads(ok(cli("-b", board.url, "-O", "json", "ps")).stdout)["components"]
    assert [c["name"] for c in ps] == ["counter"]
    # --from skips what was read already.
    rest = counts(ok(cli("-b", board.url, "logs", "counter", "--from", len(lines))).stdout)
    assert rest and rest[0][0] == numbers[-1] + 1


def test_follow_in_json_emits_one_object_per_line(board_server, cli, cli_env, processes):
    board = board_server("boardA")
    ok(cli("-b", board.url, "start", "counter"))
    follower = subprocess.Popen([*GENODE_CR, "-b", board.url, "-O", "json", "logs", "counter",
                                 "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=cli_env, start_new_session=True)
    processes.append(follower)
    objects = [json.loads(readline(follower.stdout, STARTUP_DEADLINE)) for _ in range(2)]
    assert [o["index"] for o in objects] == [0, 1]
    assert all(o["component"] == "counter" and "time_us" in o and "text" in o for o in objects)
    follower.send_signal(signal.SIGINT)
    assert follower.wait(timeout=STARTUP_DEADLINE) == 130
