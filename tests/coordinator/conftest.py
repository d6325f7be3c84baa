"""A fleet as processes: board servers, an agent per board and a coordinator,
each started as a user starts it, reached over real gRPC on loopback, every
hop mutual TLS with certificates made once per session (``fleet_certs``).

Every process is stopped at teardown (SIGTERM, then SIGKILL of its group),
pass or fail; a test may kill or restart any of them.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from genode_cr.emu import default_rom_dir
from genode_cr.link import FaultProxy, Faults
from migrate.client import CoordinatorClient
from migrate.security import COORDINATOR, Identity, Role, channel_credentials
from migrate.security import target_name_options
from migrate.security.pki import LabCertificates, init_lab
from migrate.v1 import resources_pb2 as rpb
from migrate.polling import wait_for

PYTHON = sys.executable
STARTUP_DEADLINE = 60.0
#: Generous guards so that a hung move fails the test instead of hanging it.
MOVE_DEADLINE = 240.0

COUNT = re.compile(r"^count (\d+) elapsed_ms (\d+)$")

#: The identities of the session's certificates (fleet_certs).
BOARDS = ("boardA", "boardB", "boardC")
OPERATOR = Identity(Role.OPERATOR, "operator")
VIEWER = Identity(Role.VIEWER, "viewer")


def _readline(stream, timeout: float) -> str:
    box: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: box.put(stream.readline()), daemon=True).start()
    try:
        return box.get(timeout=timeout).decode()
    except queue.Empty:
        raise AssertionError(f"no line within {timeout} s") from None


@dataclass
class Proc:
    role: str
    argv: list[str]
    log: Path
    process: subprocess.Popen
    address: str = ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            try:
                self.process.send_signal(sig)
                self.process.wait(timeout=10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.process.kill()
            self.process.wait(timeout=10)
        if self.process.stdout:
            self.process.stdout.close()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Fleet:
    directory: Path
    env: dict[str, str]
    #: Every hop's certificates; None runs the fleet in plaintext on loopback.
    certs: LabCertificates | None = None
    boards: dict[str, Proc] = field(default_factory=dict)
    agents: dict[str, Proc] = field(default_factory=dict)
    coordinator: Proc | None = None
    processes: list[Proc] = field(default_factory=list)
    clients: list[CoordinatorClient] = field(default_factory=list)
    #: Boards whose agent the coordinator reaches through a FaultProxy (a network that drops).
    proxies: dict[str, FaultProxy] = field(default_factory=dict)
    #: The coordinator's [moves] defaults. The budget is generous because a loaded CI
    #: machine stretches every freeze; tests about the budget set their own.
    move_defaults: dict[str, object] = field(
        default_factory=lambda: {"max_downtime_ms": 5000})

    def spawn(self, role: str, argv: list[str], ready: str) -> Proc:
        log = self.directory / f"{role}.log"
        with open(log, "ab") as stderr:
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr,
                                       env=self.env, start_new_session=True)
        proc = Proc(role, argv, log, process)
        self.processes.append(proc)
        line = ""
        try:
            line = _readline(process.stdout, STARTUP_DEADLINE).strip()
        except AssertionError:
            pass
        match = re.search(ready, line)
        if not match:
            raise AssertionError(f"{role} did not come up (first line {line!r}):\n"
                                 f"{log.read_text(errors='replace')[-3000:]}")
        proc.address = match[1]
        return proc

    def start_board(self, name: str, *, baud: int = 921600, port: int = 0) -> Proc:
        proc = self.spawn(f"board-{name}", [
            PYTHON, "-m", "genode_cr.cli", "board", "serve", "--name", name,
            "--uart", f"socket://127.0.0.1:{port}", "--baud", str(baud)],
            r"listening on (socket://\S+)")
        self.boards[name] = proc
        return proc

    def start_agent(self, board: str, *, listen: str = "127.0.0.1:0") -> Proc:
        if self.certs is None:
            security = ["--plaintext", "--allow-unsigned"]
        else:
            identity = Identity(Role.AGENT, board)
            security = ["--tls-ca", str(self.certs.ca),
                        "--tls-cert", str(self.certs.cert(identity)),
                        "--tls-key", str(self.certs.key(identity)),
                        "--signing-key", str(self.certs.signing_key(identity)),
                        "--trusted-signers", str(self.certs.directory)]
        proc = self.spawn(f"agent-{board}", [
            PYTHON, "-m", "migrate.agent", "--board-url", self.boards[board].address,
            "--listen", listen, *security], r"listening on (\S+)")
        self.agents[board] = proc
        return proc

    def proxy_agent(self, board: str) -> FaultProxy:
        host, _, port = self.agents[board].address.rpartition(":")
        # gRPC frames are not delimited by zero bytes: units are whatever one read returned.
        proxy = FaultProxy((host, int(port)), Faults(delimiter=None))
        self.proxies[board] = proxy
        return proxy

    def agent_address(self, board: str) -> str:
        if board in self.proxies:
            return f"127.0.0.1:{self.proxies[board].port}"
        return self.agents[board].address

    def write_config(self) -> Path:
        path = self.directory / "coordinator.toml"
        lines = ["[coordinator]", 'listen = "127.0.0.1:0"',
                 f'state_dir = "{self.directory / "state"}"', "", "[moves]"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in self.move_defaults.items()]
        lines += ["", "[tls]"]
        if self.certs is None:
            lines.append("plaintext = true")
        else:
            lines += [f"ca = {json.dumps(str(self.certs.ca))}",
                      f"cert = {json.dumps(str(self.certs.cert(COORDINATOR)))}",
                      f"key = {json.dumps(str(self.certs.key(COORDINATOR)))}", "",
                      "[signing]",
                      f"key = {json.dumps(str(self.certs.signing_key(COORDINATOR)))}",
                      f"trusted = [{json.dumps(str(self.certs.directory))}]"]
        lines.append("")
        for name in self.agents:
            lines += ["[[boards]]", f'name = "{name}"',
                      f'agent = "{self.agent_address(name)}"', ""]
        path.write_text("\n".join(lines))
        return path

    def start_coordinator(self) -> Proc:
        config = self.write_config()
        self.coordinator = self.spawn("coordinator", [
            PYTHON, "-m", "migrate.coordinator", "--config", str(config)],
            r"coordinator listening on (\S+)")
        return self.coordinator

    def client(self, timeout: float = 60.0, identity: Identity = OPERATOR) -> CoordinatorClient:
        assert self.coordinator is not None
        client = CoordinatorClient(self.coordinator.address, timeout=timeout,
                                   tls=self.certs.tls(identity) if self.certs else None)
        self.clients.append(client)
        return client

    def channel(self, address: str | None = None, identity: Identity = OPERATOR,
                server: Identity = COORDINATOR, options=()) -> grpc.Channel:
        """A raw gRPC channel (the coordinator's by default) as a generic client with
        ``identity``'s certificate opens it, checking that the server is ``server``."""
        address = address or self.coordinator.address
        if self.certs is None:
            return grpc.insecure_channel(address, options=list(options))
        return grpc.secure_channel(address, channel_credentials(self.certs.tls(identity)),
                                   options=[*target_name_options(server), *options])

    def wait_serving(self, *names: str, timeout: float = STARTUP_DEADLINE) -> None:
        client = self.client()
        wait_for(lambda: all(b.health == rpb.BOARD_HEALTH_SERVING
                             for b in client.list_boards() if b.name in names),
                 timeout, f"boards {names} serving")

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for proc in reversed(self.processes):
            proc.stop()
        for proxy in self.proxies.values():
            proxy.close()


@pytest.fixture(scope="session")
def fleet_certs(tmp_path_factory) -> LabCertificates:
    """A CA and certificates for the coordinator, the agents of BOARDS, an operator and a
    viewer: made once (milliseconds), shared by every fleet of the session."""
    return init_lab(tmp_path_factory.mktemp("certs"), boards=BOARDS)


@pytest.fixture
def fleet_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENODE_CR_", "MIGRATE_"))}
    env["GENODE_CR_ROM_DIR"] = str(default_rom_dir())
    return env


@pytest.fixture
def fleet(tmp_path, fleet_env, fleet_certs):
    """make(boards=("boardA", "boardB"), baud=921600, plaintext=False) -> a running Fleet,
    mutual TLS on every hop unless ``plaintext``."""
    fleets: list[Fleet] = []

    def make(boards=("boardA", "boardB"), baud: int = 921600, proxied=(),
             plaintext: bool = False) -> Fleet:
        f = Fleet(tmp_path, fleet_env, None if plaintext else fleet_certs)
        fleets.append(f)
        for name in boards:
            f.start_board(name, baud=baud)
            f.start_agent(name)
        for name in proxied:
            f.proxy_agent(name)
        f.start_coordinator()
        f.wait_serving(*boards)
        return f

    yield make
    for f in fleets:
        f.close()


def counts(lines: list[str]) -> list[int]:
    return [int(m[1]) for line in lines if (m := COUNT.match(line))]


def log_lines(client: CoordinatorClient, name: str) -> list[rpb.LogLine]:
    return list(client.stream_logs(name))
