"""Two boards as two QEMU virtual machines, an agent per board and a coordinator.

The boards run in the guests (deploy/qemu image, migrate/qemu.py launcher);
each agent sees only its board's serial line, a TCP chardev on loopback, as it
would on hardware. Every gRPC hop is mutual TLS (certificates from
migrate.security.pki, made once per session). The fleet is booted once per session (a TCG boot takes
seconds) and repaired before each test: a test may kill or pause a VM, and
the next one finds both boards serving and no components left.

Without QEMU or the image's inputs the tests are skipped, unless
MIGRATE_REQUIRE_QEMU=1 (``make test`` sets it): then they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from genode_cr.emu import default_rom_dir
from migrate.client import CoordinatorClient
from migrate.qemu import QEMU, QemuBoard, default_image_dir
from migrate.security import COORDINATOR, Identity, Role
from migrate.security.pki import LabCertificates, init_lab
from migrate.v1 import resources_pb2 as rpb
from migrate.polling import wait_for

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
BOARDS = ("boardA", "boardB")
#: TCG boots in 10-20 s here; a loaded CI machine gets room.
BOOT_DEADLINE = 180.0
STARTUP_DEADLINE = 60.0
MOVE_DEADLINE = 240.0
#: A small board inside a 512 MiB guest: Unicorn's buffers come on top of it.
BOARD_ARGS = ("--ram", "64M")

COUNT = re.compile(r"^count (\d+) elapsed_ms (\d+)$")


def counts(lines) -> list[int]:
    return [int(m[1]) for line in lines if (m := COUNT.match(line))]


@dataclass
class Proc:
    role: str
    log: Path
    process: subprocess.Popen
    address: str = ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@dataclass
class QemuFleet:
    directory: Path
    env: dict[str, str]
    image_dir: Path
    certs: LabCertificates
    vms: dict[str, QemuBoard] = field(default_factory=dict)
    agents: dict[str, Proc] = field(default_factory=dict)
    coordinator: Proc | None = None
    clients: list[CoordinatorClient] = field(default_factory=list)
    #: Seconds from launch to the board server's ready line, per boot.
    boot_seconds: list[float] = field(default_factory=list)
    boots: int = 0

    # --- processes -----------------------------------------------------------------------

    def spawn(self, role: str, argv: list[str], ready: str) -> Proc:
        log = self.directory / f"{role}.log"
        out = self.directory / f"{role}.out"
        with open(log, "ab") as stderr, open(out, "wb") as stdout:
            process = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=self.env,
                                       start_new_session=True)
        proc = Proc(role, log, process)

        def up() -> re.Match | None:
            if not proc.alive():
                raise AssertionError(f"{role} exited:\n{log.read_text(errors='replace')[-3000:]}")
            return re.search(ready, out.read_text(errors="replace"))

        try:
            proc.address = wait_for(up, STARTUP_DEADLINE, f"{role} to come up")[1]
        except AssertionError:
            proc.stop()
            raise
        return proc

    def boot(self, name: str, uart_port: int = 0) -> QemuBoard:
        self.boots += 1
        vm = QemuBoard(name, self.image_dir, log_dir=self.directory / f"{name}-{self.boots}",
                       board_args=BOARD_ARGS, rom_dir=self.env["GENODE_CR_ROM_DIR"],
                       uart_port=uart_port)
        vm.start()
        self.vms[name] = vm
        return vm

    def wait_booted(self, name: str) -> None:
        self.boot_seconds.append(self.vms[name].wait_ready(BOOT_DEADLINE))

    def start_agent(self, name: str) -> Proc:
        identity = Identity(Role.AGENT, name)
        proc = self.spawn(f"agent-{name}", [
            PYTHON, "-m", "migrate.agent", "--board-url", self.vms[name].uart_url,
            "--listen", "127.0.0.1:0", "--tls-ca", str(self.certs.ca),
            "--tls-cert", str(self.certs.cert(identity)),
            "--tls-key", str(self.certs.key(identity)),
            "--signing-key", str(self.certs.signing_key(identity)),
            "--trusted-signers", str(self.certs.directory)], r"agent for \S+ listening on (\S+)")
        self.agents[name] = proc
        return proc

    def start_coordinator(self) -> Proc:
        config = self.directory / "coordinator.toml"
        lines = ["[coordinator]", 'listen = "127.0.0.1:0"',
                 f'state_dir = "{self.directory / "state"}"', "", "[tls]",
                 f'ca = "{self.certs.ca}"', f'cert = "{self.certs.cert(COORDINATOR)}"',
                 f'key = "{self.certs.key(COORDINATOR)}"', "",
                 "[signing]", f'key = "{self.certs.signing_key(COORDINATOR)}"',
                 f'trusted = ["{self.certs.directory}"]', ""]
        for name, agent in self.agents.items():
            lines += ["[[boards]]", f'name = "{name}"', f'agent = "{agent.address}"', ""]
        config.write_text("\n".join(lines))
        self.coordinator = self.spawn("coordinator", [
            PYTHON, "-m", "migrate.coordinator", "--config", str(config)],
            r"coordinator listening on (\S+)")
        return self.coordinator

    def client(self, timeout: float = 60.0) -> CoordinatorClient:
        assert self.coordinator is not None
        client = CoordinatorClient(self.coordinator.address, timeout=timeout,
                                   tls=self.certs.tls(Identity(Role.OPERATOR, "operator")))
        self.clients.append(client)
        return client

    def cli_env(self) -> dict[str, str]:
        """The environment of a `migrate` command run against this fleet as its operator."""
        return {**os.environ, "MIGRATE_TLS_DIR": str(self.certs.directory),
                "MIGRATE_IDENTITY": "operator/operator"}

    def health(self, name: str) -> int:
        client = self.clients[0] if self.clients else self.client()
        return next(b.health for b in client.list_boards() if b.name == name)

    def wait_serving(self, *names: str, timeout: float = STARTUP_DEADLINE) -> None:
        wait_for(lambda: all(self.health(n) == rpb.BOARD_HEALTH_SERVING for n in names),
                 timeout, f"boards {names} serving")

    # --- between tests -------------------------------------------------------------------

    def repair(self) -> None:
        """Both boards running and serving, no component anywhere."""
        dead = [n for n, vm in self.vms.items() if not vm.alive()]
        for name in dead:
            # The same UART port: the agent keeps its URL and reconnects by itself.
            port = int(self.vms[name].uart_url.rpartition(":")[2])
            self.vms[name].close()
            self.boot(name, uart_port=port)
        for name in dead:
            self.wait_booted(name)
        for name, vm in self.vms.items():
            if vm.status() == "paused":
                vm.resume()
        self.wait_serving(*self.vms, timeout=BOOT_DEADLINE)
        client = self.clients[0]
        for component in client.list_components().components:
            client.kill_component(component.name)
        wait_for(lambda: not client.list_components().components, 60, "no components left")

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for proc in [self.coordinator, *self.agents.values()]:
            if proc is not None:
                proc.stop()
        for vm in self.vms.values():
            vm.close()


def _build_image(image_dir: Path) -> str:
    """'' when the image is ready, else why not."""
    if shutil.which(QEMU) is None:
        return f"{QEMU} is not installed (make qemu-image installs it)"
    build = subprocess.run([PYTHON, str(REPO / "deploy" / "qemu" / "build_image.py"),
                            "--out", str(image_dir)], capture_output=True, text=True)
    if build.returncode:
        return f"the QEMU image could not be built: {build.stderr.strip()[-1000:]}"
    return ""


@pytest.fixture(scope="session")
def qemu_image() -> Path:
    """The board image's directory, built (or found up to date) once per session."""
    image_dir = default_image_dir()
    if reason := _build_image(image_dir):
        if os.environ.get("MIGRATE_REQUIRE_QEMU") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return image_dir


@pytest.fixture(scope="session")
def qemu_session(tmp_path_factory, qemu_image):
    image_dir = qemu_image
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENODE_CR_", "MIGRATE_"))}
    env["GENODE_CR_ROM_DIR"] = str(default_rom_dir())
    env["PYTHONUNBUFFERED"] = "1"
    certs = init_lab(tmp_path_factory.mktemp("qemu-certs"), boards=BOARDS)
    fleet = QemuFleet(tmp_path_factory.mktemp("qemu-fleet"), env, image_dir, certs)
    try:
        for name in BOARDS:
            fleet.boot(name)
        with ThreadPoolExecutor(len(BOARDS)) as pool:
            list(pool.map(fleet.wait_booted, BOARDS))
        for name in BOARDS:
            fleet.start_agent(name)
        fleet.start_coordinator()
        fleet.client()
        fleet.wait_serving(*BOARDS)
        yield fleet
    finally:
        fleet.close()


@pytest.fixture
def qemu_fleet(qemu_session, request):
    """The session's fleet, repaired: both VMs up and serving, no components."""
    qemu_session.repair()
    yield qemu_session
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:        # shown with the failure
        for name, vm in qemu_session.vms.items():
            print(f"--- console of {name} ---\n{vm.console_log.read_text(errors='replace')[-3000:]}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report
