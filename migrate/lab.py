"""A local fleet as background processes: ``migrate lab up|status|down``.

``start_lab`` runs N emulated boards (``genode-cr board serve``), an agent per
board (``python -m migrate.agent``) and a coordinator (``python -m
migrate.coordinator``) with a generated configuration, each detached in its
own session with its output in a log file, and waits for each one's ready
line. Every hop is mutual TLS by default, with the lab's certificates
(``migrate.security.pki.init_lab`` in ``$XDG_CONFIG_HOME/genode-migrate/certs``,
made when missing, kept across labs); ``plaintext=True`` runs it without TLS,
on loopback as always. Everything is recorded in ``$XDG_STATE_HOME/genode-migrate/lab/lab.json``
as it starts, so that ``stop_lab`` can clean up even after a ``lab up`` that
was interrupted, and the client configuration is written so that every other
``migrate`` command finds the lab's coordinator without flags.

Layout of the lab directory::

    lab.json                  what runs: pids, addresses, logs (LAB_FORMAT)
    coordinator.toml          the coordinator's configuration
    coordinator/              its state (SQLite, page store); wiped by the next `lab up`
    boardA.log agent-boardA.log ... coordinator.log
    client.toml.before-lab    a client configuration `lab up` replaced, put back by `lab down`

The client configuration `lab up` writes uses the lab's operator identity
(operator/operator); ``MIGRATE_IDENTITY=viewer/viewer`` picks the viewer's
certificate from the same directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from . import config, errors
from .client import CoordinatorClient
from .security import pki
from .security.identity import Identity, Role
from .security.tls import TlsConfig
from .v1 import resources_pb2 as res

__all__ = [
    "Lab",
    "LabProcess",
    "LabBoard",
    "LabRunning",
    "LabFailed",
    "NoLab",
    "board_names",
    "lab_dir",
    "lab_file",
    "load_lab",
    "start_lab",
    "stop_lab",
    "lab_status",
    "lab_client",
    "LAB_OPERATOR",
    "LAB_VIEWER",
    "process_alive",
    "DEFAULT_BAUD",
]

#: The demo's and the lab's line rate: a common fast UART setting (921600 8N1).
DEFAULT_BAUD = 921600
#: How long a process may take to print its ready line. Boards load ROMs and
#: agents import grpc; a few seconds each on a slow machine.
READY_DEADLINE = 60.0
#: How long `lab down` waits after SIGTERM before SIGKILL (servers drain their calls).
STOP_GRACE = 10.0
#: Version of lab.json's layout.
LAB_FORMAT = 1
#: The first line of a client configuration `lab up` wrote (config.write_client_config).
_OURS = "# written by `migrate lab up`"

BOARD_READY = re.compile(r"^(\S+) listening on (socket://\S+)\s*$", re.MULTILINE)
AGENT_READY = re.compile(r"^agent for (\S+) listening on (\S+)\s*$", re.MULTILINE)
#: A board in QEMU (python -m migrate.qemu): its UART first, then the board server's ready line.
VM_UART = re.compile(r"^(\S+) uart (socket://\S+)\s*$", re.MULTILINE)
VM_READY = re.compile(r"^(\S+) ready after ([\d.]+) s\s*$", re.MULTILINE)
#: A VM boots in 13-17 s under software emulation here; several at once take longer.
VM_READY_DEADLINE = 300.0
COORDINATOR_READY = re.compile(r"^coordinator listening on (\S+)\s*$", re.MULTILINE)

Report = Callable[[str], None]

#: The identities `lab up` makes certificates for besides the coordinator and agents;
#: the client configuration it writes uses the operator.
LAB_OPERATOR = Identity(Role.OPERATOR, "operator")
LAB_VIEWER = Identity(Role.VIEWER, "viewer")


class LabRunning(errors.Conflict):
    """`lab up` while a lab runs."""

    reason = "LAB_RUNNING"


class NoLab(errors.NotFound):
    reason = "NO_LAB"


class LabFailed(errors.MigrateError):
    """A lab process did not come up; everything started was stopped again."""

    reason = "LAB_FAILED"

    def __init__(self, message: str, *, log: Path | None = None, log_tail: str = ""):
        super().__init__(message)
        self.log = log
        self.log_tail = log_tail


@dataclass
class LabProcess:
    role: str                 # "board", "agent" or "coordinator"
    name: str                 # boardA, agent-boardA, coordinator
    pid: int
    start_time: int           # /proc/PID/stat field 22: tells a reused pid apart
    log: str
    argv: list[str]
    address: str = ""         # the board's URL, the agent's or coordinator's host:port


@dataclass
class LabBoard:
    name: str
    url: str = ""
    agent: str = ""


@dataclass
class Lab:
    dir: str
    baud: int
    boards: list[LabBoard] = field(default_factory=list)
    processes: list[LabProcess] = field(default_factory=list)
    coordinator: str = ""
    client_config: str = ""
    client_config_backup: str = ""
    created: float = 0.0
    format: int = LAB_FORMAT
    qemu: bool = False        # boards are QEMU virtual machines (migrate.qemu)
    tls_dir: str = ""         # the certificates every hop uses; "": plaintext on loopback

    def tls(self, identity: Identity) -> TlsConfig | None:
        """The TLS files of one of the lab's identities (None for a plaintext lab)."""
        return TlsConfig.from_directory(self.tls_dir, identity) if self.tls_dir else None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Lab:
        data = dict(data)
        data["boards"] = [LabBoard(**b) for b in data.get("boards", [])]
        data["processes"] = [LabProcess(**p) for p in data.get("processes", [])]
        return cls(**data)

    def process(self, name: str) -> LabProcess | None:
        return next((p for p in self.processes if p.name == name), None)

    def save(self) -> None:
        path = Path(self.dir) / "lab.json"
        tmp = path.with_suffix(".json.part")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        os.replace(tmp, path)


def board_names(count: int) -> list[str]:
    """boardA ... boardZ, then board27, board28, ..."""
    return [f"board{chr(ord('A') + i)}" if i < 26 else f"board{i + 1}" for i in range(count)]


def lab_dir() -> Path:
    return config.state_home() / "lab"


def lab_file() -> Path:
    return lab_dir() / "lab.json"


def load_lab() -> Lab | None:
    """The recorded lab, or None when there is none."""
    try:
        return Lab.from_dict(json.loads(lab_file().read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as error:
        raise LabFailed(f"{lab_file()} is damaged ({error}); remove it after checking that "
                        "no lab process still runs") from None


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One `lab up` or `lab down` at a time."""
    lab_dir().mkdir(parents=True, exist_ok=True)
    with open(lab_dir() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# --- processes ---------------------------------------------------------------------------

def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat (state first), or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return []
    return raw[raw.rfind(")") + 2:].split()


def _start_time(pid: int) -> int:
    fields = _proc_stat(pid)
    return int(fields[19]) if fields and len(fields) > 19 else 0


def process_alive(pid: int, start_time: int = 0) -> bool:
    """Whether the process runs (a zombie does not; nor a new process that reused the pid)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)           # our own child (lab up in this process): reap it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _proc_stat(pid)
    if fields is None:
        return not Path("/proc/self/stat").exists()   # no /proc: trust kill(0)
    if fields and fields[0] in ("Z", "X"):
        return False
    return not (start_time and fields and len(fields) > 19 and int(fields[19]) != start_time)


#: Popen objects of this process's lab children, kept so that they are not
#: reported as "still running" when collected: they are meant to outlive us.
_children: list[subprocess.Popen] = []


def _spawn(lab: Lab, role: str, name: str, argv: list[str]) -> LabProcess:
    log = Path(lab.dir) / f"{name}.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")   # ready lines reach the log at once
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, env=env, start_new_session=True)
    _children.append(process)
    started = LabProcess(role, name, process.pid, _start_time(process.pid), str(log), argv)
    lab.processes.append(started)
    lab.save()
    return started


def _tail(path: str | Path, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _wait_ready(process: LabProcess, pattern: re.Pattern[str], deadline: float) -> re.Match[str]:
    """The ready line's match, once the process has written it to its log."""
    while True:
        with contextlib.suppress(OSError):
            if m := pattern.search(Path(process.log).read_text(errors="replace")):
                return m
        if not process_alive(process.pid, process.start_time):
            raise LabFailed(f"{process.name} exited before it was ready (log: {process.log})",
                            log=Path(process.log), log_tail=_tail(process.log))
        if time.monotonic() > deadline:
            raise LabFailed(f"{process.name} was not ready within {READY_DEADLINE:g} s "
                            f"(log: {process.log})",
                            log=Path(process.log), log_tail=_tail(process.log))
        time.sleep(0.05)


#: The lab coordinator's default downtime budget for a move.
LAB_MAX_DOWNTIME_MS = 1000


def _toml_string(value: str) -> str:
    return json.dumps(value)        # a JSON string is a TOML basic string


def _coordinator_toml(lab: Lab) -> str:
    lines = ["# written by `migrate lab up`", "[coordinator]",
             'listen = "127.0.0.1:0"',
             f"state_dir = {_toml_string(str(Path(lab.dir) / 'coordinator'))}", "",
             # Emulated boards share this machine's cores with everything else on it,
             # which stretches a freeze; a real fleet sets the budget its links allow.
             "[moves]", f"max_downtime_ms = {LAB_MAX_DOWNTIME_MS}", "", "[tls]"]
    if lab.tls_dir:
        stem = Path(lab.tls_dir) / Identity(Role.COORDINATOR, "coordinator").file_stem
        lines += [f"ca = {_toml_string(str(Path(lab.tls_dir) / 'ca.crt'))}",
                  f"cert = {_toml_string(str(stem) + '.crt')}",
                  f"key = {_toml_string(str(stem) + '.key')}", "",
                  "[signing]", f"key = {_toml_string(str(stem) + '.signing.key')}",
                  f"trusted = [{_toml_string(str(lab.tls_dir))}]", ""]
    else:
        lines += ["plaintext = true", ""]
    for board in lab.boards:
        lines += ["[[boards]]", f"name = {_toml_string(board.name)}",
                  f"agent = {_toml_string(board.agent)}", ""]
    return "\n".join(lines)


# --- up, status, down ------------------------------------------------------------------------

def start_lab(boards: int = 2, baud: int = DEFAULT_BAUD, *, ready_deadline: float = READY_DEADLINE,
              report: Report | None = None, qemu: bool = False, plaintext: bool = False,
              certs_dir: Path | None = None) -> Lab:
    """Starts a lab and returns it once every process is ready.

    Every hop is mutual TLS with the certificates in ``certs_dir`` (default
    ``config.certs_home()``; made or completed first); ``plaintext`` runs the lab
    without TLS.

    Raises:
        LabRunning: a lab runs already.
        LabFailed: a process did not come up (everything started is stopped again).
    """
    if boards < 1:
        raise errors.RequestError("a lab needs at least one board")
    say = report or (lambda message: None)
    with _locked():
        previous = load_lab()
        if previous is not None:
            running = [p.name for p in previous.processes if process_alive(p.pid, p.start_time)]
            if running:
                raise LabRunning(f"a lab runs already (coordinator {previous.coordinator or '?'}, "
                                 f"{len(running)} processes); `migrate lab down` stops it")
            say("a previous lab's processes are gone: cleaning up after it")
            _stop(previous, say)
        directory = lab_dir()
        shutil.rmtree(directory / "coordinator", ignore_errors=True)
        names = board_names(boards)
        tls_dir = ""
        if not plaintext:
            certs = pki.init_lab(certs_dir or config.certs_home(), boards=names,
                                 operators=[LAB_OPERATOR.name], viewers=[LAB_VIEWER.name])
            if certs.written:
                say(f"certificates: {len(certs.written)} files written to {certs.directory}")
            tls_dir = str(certs.directory.resolve())
        lab = Lab(dir=str(directory), baud=0 if qemu else baud, created=time.time(),
                  boards=[LabBoard(name) for name in names], qemu=qemu, tls_dir=tls_dir)
        lab.save()
        try:
            _bring_up(lab, ready_deadline, say)
        except BaseException:
            _stop(lab, say)
            raise
        return lab


def _bring_up(lab: Lab, ready_deadline: float, say: Report) -> None:
    python = sys.executable
    baud = ["--baud", str(lab.baud)] if lab.baud else []
    if lab.qemu:
        started = [_spawn(lab, "board", b.name,
                          [python, "-m", "migrate.qemu", "--name", b.name,
                           "--log-dir", str(Path(lab.dir) / f"vm-{b.name}")])
                   for b in lab.boards]
        deadline = time.monotonic() + max(ready_deadline, VM_READY_DEADLINE)
        for board, process in zip(lab.boards, started):
            board.url = process.address = _wait_ready(process, VM_UART, deadline)[2]
        for board, process in zip(lab.boards, started):
            booted = _wait_ready(process, VM_READY, deadline)[2]
            say(f"{board.name}: virtual machine up in {booted} s, its UART on {board.url}")
    else:
        started = [_spawn(lab, "board", b.name,
                          [python, "-m", "genode_cr", "board", "serve", "--name", b.name,
                           "--uart", "socket://127.0.0.1:0", *baud])
                   for b in lab.boards]
        deadline = time.monotonic() + ready_deadline
        for board, process in zip(lab.boards, started):
            board.url = process.address = _wait_ready(process, BOARD_READY, deadline)[2]
            say(f"{board.name}: board on {board.url}")
    lab.save()

    started = [_spawn(lab, "agent", f"agent-{b.name}",
                      [python, "-m", "migrate.agent", "--board-url", b.url,
                       "--listen", "127.0.0.1:0", *baud, *_agent_security(lab, b.name)])
               for b in lab.boards]
    deadline = time.monotonic() + ready_deadline
    for board, process in zip(lab.boards, started):
        board.agent = process.address = _wait_ready(process, AGENT_READY, deadline)[2]
        say(f"{board.name}: agent on {board.agent}")
    lab.save()

    toml = Path(lab.dir) / "coordinator.toml"
    toml.write_text(_coordinator_toml(lab))
    process = _spawn(lab, "coordinator", "coordinator",
                     [python, "-m", "migrate.coordinator", "--config", str(toml)])
    lab.coordinator = process.address = _wait_ready(
        process, COORDINATOR_READY, time.monotonic() + ready_deadline)[1]
    say(f"coordinator on {lab.coordinator}")
    lab.save()

    path = config.client_config_path()
    if path.exists() and not path.read_text(errors="replace").startswith(_OURS):
        backup = Path(lab.dir) / "client.toml.before-lab"
        shutil.copy2(path, backup)
        lab.client_config_backup = str(backup)
    operator = lab.tls(LAB_OPERATOR)
    files = (operator.ca, operator.cert, operator.key) if operator else None
    lab.client_config = str(config.write_client_config(lab.coordinator, path, tls=files))
    lab.save()


def _agent_security(lab: Lab, board: str) -> list[str]:
    if not lab.tls_dir:
        return ["--plaintext", "--allow-unsigned"]
    stem = Path(lab.tls_dir) / Identity(Role.AGENT, board).file_stem
    # Every agent signs what it streams and trusts the lab's signing keys (the
    # coordinator's and every agent's public key, all in the lab's directory).
    return ["--tls-ca", str(Path(lab.tls_dir) / "ca.crt"), "--tls-cert", f"{stem}.crt",
            "--tls-key", f"{stem}.key", "--signing-key", f"{stem}.signing.key",
            "--trusted-signers", str(lab.tls_dir)]


def lab_client(lab: Lab, identity: Identity = LAB_OPERATOR, *, timeout: float = 30.0
               ) -> CoordinatorClient:
    """A client of the lab's coordinator as one of the lab's identities."""
    return CoordinatorClient(lab.coordinator, timeout=timeout, tls=lab.tls(identity))


def _signal(process: LabProcess, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if sig == signal.SIGKILL:
            os.killpg(process.pid, sig)      # its session: anything it started goes too
        else:
            os.kill(process.pid, sig)


def _wait_gone(processes: list[LabProcess], seconds: float) -> list[LabProcess]:
    deadline = time.monotonic() + seconds
    alive = [p for p in processes if process_alive(p.pid, p.start_time)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if process_alive(p.pid, p.start_time)]
    return alive


def _stop(lab: Lab, say: Report) -> dict[str, str]:
    """Stops every process of ``lab`` and removes its files; what happened to each."""
    outcome: dict[str, str] = {}
    running = [p for p in reversed(lab.processes) if process_alive(p.pid, p.start_time)]
    for p in lab.processes:
        outcome[p.name] = "not running"
    for p in running:                              # coordinator first, boards last
        _signal(p, signal.SIGTERM)
        outcome[p.name] = "stopped"
    for p in _wait_gone(running, STOP_GRACE):
        say(f"{p.name} (pid {p.pid}) ignored SIGTERM: killing it")
        _signal(p, signal.SIGKILL)
        outcome[p.name] = "killed"
    for p in _wait_gone(running, 5.0):
        outcome[p.name] = "still running"
        say(f"{p.name} (pid {p.pid}) survived SIGKILL")
    _restore_client_config(lab)
    with contextlib.suppress(FileNotFoundError):
        (Path(lab.dir) / "lab.json").unlink()
    return outcome


def _restore_client_config(lab: Lab) -> None:
    """Removes the client configuration the lab wrote (if nobody changed it since)."""
    if not lab.client_config:
        return
    path = Path(lab.client_config)
    with contextlib.suppress(FileNotFoundError):
        text = path.read_text(errors="replace")
        if text.startswith(_OURS) and f'"{lab.coordinator}"' in text:
            path.unlink()
    if lab.client_config_backup and not path.exists():
        with contextlib.suppress(FileNotFoundError):
            shutil.move(lab.client_config_backup, path)


def stop_lab(report: Report | None = None) -> tuple[Lab, dict[str, str]]:
    """Stops the recorded lab: SIGTERM, a grace period, SIGKILL.

    Returns the lab and, per process name, "stopped", "killed", "not running"
    or "still running". Raises NoLab when none is recorded.
    """
    with _locked():
        lab = load_lab()
        if lab is None:
            raise NoLab("no lab is running (`migrate lab up` starts one)")
        return lab, _stop(lab, report or (lambda message: None))


def lab_status(lab: Lab, boards: list | None = None, coordinator_error: str = "") -> dict:
    """The lab as plain data: each process (alive?), each board's address and health.

    ``boards`` are the coordinator's Board messages (ListBoards), if it answered.
    """
    health = {b.name: b for b in boards or []}

    def process(name: str) -> dict:
        p = lab.process(name)
        if p is None:
            return {"pid": None, "alive": False, "log": None}
        return {"pid": p.pid, "alive": process_alive(p.pid, p.start_time), "log": p.log}

    def board(b: LabBoard) -> dict:
        known = health.get(b.name)
        vm_dir = Path(lab.dir) / f"vm-{b.name}" if lab.qemu else None
        return {
            "name": b.name, "url": b.url, "agent_address": b.agent,
            "kind": "qemu" if lab.qemu else "process",
            "vm_console": str(vm_dir / "console.log") if vm_dir else None,
            "vm_state": _vm_state(vm_dir) if vm_dir else None,
            "health": _health_name(known.health) if known else "UNKNOWN",
            "health_detail": known.health_detail if known else "",
            "board": process(b.name), "agent": process(f"agent-{b.name}"),
        }

    return {
        "dir": lab.dir, "baud": lab.baud, "created": lab.created, "qemu": lab.qemu,
        "tls": {"enabled": bool(lab.tls_dir), "dir": lab.tls_dir or None},
        "coordinator": {"address": lab.coordinator, **process("coordinator"),
                        "error": coordinator_error},
        "boards": [board(b) for b in lab.boards],
        "client_config": lab.client_config,
    }


def _vm_state(vm_dir: Path) -> str:
    """QMP's run state as the board's launcher last wrote it (running, paused, ...)."""
    try:
        return (vm_dir / "state").read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def _health_name(value: int) -> str:
    return res.BoardHealth.Name(value).removeprefix("BOARD_HEALTH_")
