"""Fixtures for the `genode-cr` tests: boards as processes, the CLI as processes.

Every process a test starts is registered with the ``processes`` fixture, whose
finalizer stops it (SIGTERM, then SIGKILL of its process group) whether the
test passed or not.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from genode_cr import cli as genode_cr_cli
from genode_cr.emu import default_rom_dir

VENV_BIN = Path(sys.executable).parent
#: The installed entry point, as a user runs it; `python -m` if it is not installed.
GENODE_CR = ([str(VENV_BIN / "genode-cr")] if (VENV_BIN / "genode-cr").is_file()
             else [sys.executable, "-m", "genode_cr.cli"])

COUNT = re.compile(r"^count (\d+) elapsed_ms (\d+)$")

#: Generous guards so that a hung process fails the test instead of hanging it;
#: no test asserts how long anything took.
STARTUP_DEADLINE = 30.0
COMMAND_DEADLINE = 90.0


@pytest.fixture(scope="session")
def rom_dir() -> Path:
    directory = default_rom_dir()
    if not all((directory / rom).is_file() for rom in ("counter", "kvstore", "ticker")):
        pytest.fail(f"component ROMs missing in {directory}: run `make roms` (make test does)")
    return directory


@pytest.fixture(scope="session")
def base_env(rom_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENODE_CR_")}
    env["GENODE_CR_ROM_DIR"] = str(rom_dir)
    env.pop("TERM", None)
    return env


@pytest.fixture
def cli_env(base_env) -> dict[str, str]:
    """The environment of the processes a test starts; a test may change its copy."""
    return dict(base_env)


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        try:
            process.send_signal(sig)
            process.wait(timeout=5)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            process.kill()
        process.wait(timeout=5)
    for stream in (process.stdout, process.stderr, process.stdin):
        if stream is not None:
            stream.close()


@contextlib.contextmanager
def stopped_at_exit() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    try:
        yield started
    finally:
        for process in reversed(started):
            stop_process(process)


@pytest.fixture
def processes():
    """Every long-running process of a test; all are stopped at teardown, pass or fail."""
    with stopped_at_exit() as started:
        yield started


@pytest.fixture(scope="module")
def module_processes():
    """The same for processes a whole module shares."""
    with stopped_at_exit() as started:
        yield started


def readline(stream, timeout: float) -> str:
    """One line from a pipe, or AssertionError after ``timeout`` seconds."""
    box: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: box.put(stream.readline()), daemon=True).start()
    try:
        line = box.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no line within {timeout} s") from None
    return line.decode() if isinstance(line, bytes) else line


@dataclass
class BoardProcess:
    name: str
    url: str
    port: int
    process: subprocess.Popen
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")


def start_board(registry: list, env: dict, directory: Path, name: str, *options: str,
                json_output: bool = False) -> BoardProcess:
    """`genode-cr board serve` on a free port, registered for teardown at once."""
    log = directory / f"{name}.stderr"
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [*GENODE_CR, *(["-O", "json"] if json_output else []), "board", "serve",
             "--name", name, "--uart", "socket://127.0.0.1:0", *options],
            stdout=subprocess.PIPE, stderr=stderr, env=env, start_new_session=True)
    registry.append(process)
    try:
        line = readline(process.stdout, STARTUP_DEADLINE).strip()
    except AssertionError:
        raise AssertionError(f"board {name} did not report its URL:\n"
                             f"{log.read_text(errors='replace')}") from None
    if json_output:
        ready = json.loads(line)
        assert ready["board"] == name
        url = ready["url"]
    else:
        m = re.fullmatch(rf"{re.escape(name)} listening on (\S+)", line)
        assert m, f"unexpected first line from board {name}: {line!r}"
        url = m[1]
    m = re.fullmatch(r"socket://127\.0\.0\.1:(\d+)", url)
    assert m and int(m[1]) != 0, url
    return BoardProcess(name, url, int(m[1]), process, log)


@pytest.fixture
def board_server(processes, cli_env, tmp_path):
    """start(name, *options, json_output=False) -> BoardProcess, stopped after the test."""

    def start(name: str, *options: str, json_output: bool = False) -> BoardProcess:
        return start_board(processes, cli_env, tmp_path, name, *options, json_output=json_output)

    return start


@pytest.fixture
def cli(cli_env):
    """cli(*args) -> CompletedProcess of one `genode-cr` run (text mode pipes)."""

    def run(*args: object, timeout: float = COMMAND_DEADLINE) -> subprocess.CompletedProcess:
        return subprocess.run([*GENODE_CR, *map(str, args)], capture_output=True, text=True,
                              env=cli_env, timeout=timeout)

    return run


@pytest.fixture
def cli_here(capsys):
    """cli_here(*args): `genode-cr` run in this process (for commands that need no board)."""

    def run(*args: object) -> subprocess.CompletedProcess:
        capsys.readouterr()
        code = genode_cr_cli.run([str(a) for a in args])
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(["genode-cr", *map(str, args)], code,
                                           captured.out, captured.err)

    return run


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (
        f"{' '.join(result.args[-6:])} exited {result.returncode}\n"
        f"stdout: {result.stdout}\nstderr: {result.stderr}")
    assert "Traceback" not in result.stderr
    return result


def failed(result: subprocess.CompletedProcess, code: int) -> str:
    """Asserts exit ``code`` with exactly one `error: ...` line on stderr; returns it."""
    assert result.returncode == code, (
        f"expected exit {code}, got {result.returncode}\nstdout: {result.stdout}\n"
        f"stderr: {result.stderr}")
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def counts(text: str) -> list[tuple[int, int]]:
    """(count, elapsed_ms) of every count line of a counter's log."""
    return [(int(m[1]), int(m[2])) for line in text.splitlines() if (m := COUNT.match(line))]


def assert_continues(before: list[tuple[int, int]], after: list[tuple[int, int]]) -> None:
    """The restored counter picks up at the next number: none repeated, none missing."""
    numbers = [n for n, _ in before]
    assert numbers, "the source logged no count"
    assert numbers == list(range(1, len(numbers) + 1)), numbers
    resumed = [n for n, _ in after]
    assert len(resumed) >= 2, f"the restored counter logged {resumed}"
    assert resumed == list(range(numbers[-1] + 1, numbers[-1] + 1 + len(resumed))), \
        f"source ended at {numbers[-1]}, target logged {resumed}"
    elapsed = [e for _, e in before + after]
    assert elapsed == sorted(elapsed) and len(set(elapsed)) == len(elapsed), elapsed
