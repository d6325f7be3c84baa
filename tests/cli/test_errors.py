"""Refusals and failures: one line on stderr, the documented exit code, JSON on request."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from genode_cr.cli import EXIT_CODES

from .conftest import COMMAND_DEADLINE, GENODE_CR, failed, ok, start_board


@pytest.fixture(scope="module")
def board(module_processes, base_env, tmp_path_factory):
    """One board for the module; its tests use component names of their own."""
    return start_board(module_processes, base_env, tmp_path_factory.mktemp("board"), "boardA")


@pytest.fixture(scope="module")
def checkpoint_file(board, base_env, tmp_path_factory):
    """A checkpoint of a counter named "counter" on ``board``, which keeps running."""
    path = tmp_path_factory.mktemp("checkpoint") / "counter.ckpt"
    for args in (("start", "counter"), ("checkpoint", "counter", "-o", path)):
        ok(subprocess.run([*GENODE_CR, "-b", board.url, *map(str, args)], capture_output=True,
                          text=True, env=base_env, timeout=COMMAND_DEADLINE))
    return path


@pytest.mark.parametrize("command", [
    ("logs", "nosuch"), ("checkpoint", "nosuch", "-o", "{tmp}/never.ckpt"),
])
def test_unknown_component_is_a_bad_request(board, cli, tmp_path, command):
    line = failed(cli("-b", board.url, *(c.format(tmp=tmp_path) for c in command)), 6)
    assert "nosuch" in line
    assert list(tmp_path.iterdir()) == []       # neither the file nor a temporary one


def test_unwritable_file_fails_before_the_board_is_asked(board, cli, tmp_path):
    ok(cli("-b", board.url, "start", "stays", "--rom", "counter"))
    line = failed(cli("-b", board.url, "checkpoint", "stays", "--freeze",
                      "-o", tmp_path / "missing" / "x.ckpt"), 1)
    assert "cannot write" in line
    states = {c["name"]: c["state"] for c in
              json.loads(ok(cli("-b", board.url, "-O", "json", "ps")).stdout)["components"]}
    assert states["stays"] == "running"


def test_json_error_shape(board, cli):
    result = cli("-b", board.url, "-O", "json", "logs", "nosuch")
    failed(result, 6)
    assert json.loads(result.stdout) == {"error": {
        "code": "unknown_component", "message": "no component named 'nosuch' on boardA"}}
    # Global options may follow the command as well.
    after = cli("-b", board.url, "logs", "nosuch", "-O", "json")
    assert after.returncode == 6
    assert json.loads(after.stdout)["error"]["code"] == "unknown_component"


def test_starting_a_name_twice_is_a_bad_request(board, cli):
    ok(cli("-b", board.url, "start", "twice", "--rom", "ticker"))
    failed(cli("-b", board.url, "start", "twice", "--rom", "counter"), 6)


def test_restore_onto_a_name_in_use(board, cli, checkpoint_file):
    result = cli("-b", board.url, "-O", "json", "restore", checkpoint_file)
    line = failed(result, 6)
    assert "already runs" in line
    assert json.loads(result.stdout)["error"]["code"] == "name_in_use"
    # Under another name it is a second, independent counter.
    ok(cli("-b", board.url, "restore", checkpoint_file, "--name", "counter2"))
    names = [c["name"] for c in json.loads(ok(cli("-b", board.url, "-O", "json", "ps")).stdout)
             ["components"]]
    assert {"counter", "counter2"} <= set(names)


@pytest.mark.parametrize("options, code", [
    (("thing", "--rom", "nosuch"), "rom_missing"),
    (("big", "--rom", "counter", "--ram", "1G"), "insufficient_quota"),
])
def test_the_board_refuses(board, cli, options, code):
    result = cli("-b", board.url, "-O", "json", "start", *options)
    failed(result, 5)
    assert json.loads(result.stdout)["error"]["code"] == code


def test_incremental_after_the_wrong_checkpoint_is_a_bad_request(board, cli, tmp_path):
    ok(cli("-b", board.url, "start", "inc", "--rom", "counter"))
    ok(cli("-b", board.url, "checkpoint", "inc", "-o", tmp_path / "first.ckpt"))
    ok(cli("-b", board.url, "checkpoint", "inc", "-o", tmp_path / "second.ckpt"))
    line = failed(cli("-b", board.url, "checkpoint", "inc", "--since", tmp_path / "first.ckpt",
                      "-o", tmp_path / "inc.ckpt"), 6)
    assert "must follow the last one" in line
    assert not (tmp_path / "inc.ckpt").exists()


@pytest.fixture
def dead_port():
    """A port that refuses connections: bound (so nobody else gets it), never listening."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def test_board_unreachable(cli, dead_port):
    result = cli("-b", f"socket://127.0.0.1:{dead_port}", "--timeout", "2", "-O", "json", "ps")
    line = failed(result, 3)
    assert str(dead_port) in line
    assert json.loads(result.stdout)["error"]["code"] == "board_unreachable"


def test_python_m_genode_cr_exits_with_the_code(cli_env, dead_port):
    result = subprocess.run([sys.executable, "-m", "genode_cr", "-b",
                             f"socket://127.0.0.1:{dead_port}", "ps"], capture_output=True,
                            text=True, env=cli_env, timeout=COMMAND_DEADLINE)
    failed(result, 3)


def test_board_that_never_answers(cli):
    """Something listens but never speaks the protocol: the handshake gives up."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        line = failed(cli("-b", f"socket://127.0.0.1:{port}", "--timeout", "0.5", "info"), 3)
        assert "handshake" in line


def test_board_from_the_environment(board, cli_env, cli):
    cli_env["GENODE_CR_BOARD"] = board.url
    info = json.loads(ok(cli("-O", "json", "info")).stdout)["board"]
    assert info["name"] == "boardA" and info["arch"] == "arm32"
    assert {"counter", "kvstore", "ticker"} <= {r["name"] for r in info["roms"]}


def test_usage_error_in_a_process(cli):
    failed(cli("-b", "socket://127.0.0.1:1", "start"), 2)


@pytest.mark.parametrize("args", [
    ("ps",),                                        # no board
    ("-b", "socket://127.0.0.1:1", "bogus"),        # no such command
    ("-b", "socket://127.0.0.1:1", "start", "x", "--ram", "lots"),
    ("-b", "foo://nowhere", "ps"),                  # a URL pyserial does not know
    ("checkpoint", "counter"),                      # no -o FILE
    ("verify", "/nonexistent.ckpt"),
    ("--timeout", "0", "ps"),
])
def test_usage_errors(cli_here, monkeypatch, args):
    monkeypatch.delenv("GENODE_CR_BOARD", raising=False)
    failed(cli_here(*args), 2)


def test_usage_error_as_json(cli_here, monkeypatch):
    monkeypatch.delenv("GENODE_CR_BOARD", raising=False)
    result = cli_here("-O", "json", "ps")
    failed(result, 2)
    assert json.loads(result.stdout)["error"]["code"] == "usage"


def test_help_documents_the_exit_codes(cli_here):
    text = ok(cli_here("--help")).stdout
    for code in ("0", "1", "2", "3", "4", "5", "6", "130"):
        assert f"\n    {code} " in text, code
    assert "board unreachable" in ok(cli_here("restore", "--help")).stdout


def test_docs_list_the_same_exit_codes():
    from pathlib import Path
    docs = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    codes = [line.split()[0] for line in EXIT_CODES.splitlines()[2:] if line[:6].strip()]
    for code in codes:
        assert f"| {code} " in docs, f"exit code {code} is not in docs/cli.md"
