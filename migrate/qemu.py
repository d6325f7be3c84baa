"""A board as a QEMU virtual machine: the launcher behind the system tests.

``QemuBoard`` boots the image of deploy/qemu/build_image.py (or a user's own
image) in qemu-system-x86_64, wired as a board on hardware is: the console on
the first serial port (a log file), the CR link on the second, exposed as a TCP
server chardev on loopback whose port QEMU picks and QMP reports
(``uart_url``), and a QMP socket to pause, resume, quit or kill the machine.

QEMU starts paused (-S) and is continued once QMP is connected; the guest's
board server prints its ready line on the console (``wait_ready``). Leaving the
context guarantees the process is gone: QMP ``quit``, then SIGKILL.

Software emulation (TCG) unless KVM is asked for, or ``kvm="auto"`` and
/dev/kvm exists and a short probe boot finishes: nested KVM may be present and
hang, so it is never trusted untested. The probe's verdict is cached next to
the image.

    python -m migrate.qemu --name boardA        # prints "boardA uart socket://127.0.0.1:PORT"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from qemu.qmp import QMPClient, QMPError

from . import errors

__all__ = [
    "QemuBoard",
    "QemuError",
    "QemuLaunchError",
    "default_image_dir",
    "board_append",
    "kvm_usable",
    "main",
]

QEMU = "qemu-system-x86_64"
#: How long QEMU may take to create its QMP socket, and a QMP command to answer.
QMP_DEADLINE = 20.0
#: How long a graceful ``quit`` may take before the process is killed.
QUIT_GRACE = 10.0
#: A KVM guest that works reaches its init in a second or two; a hung one never does.
KVM_PROBE_TIMEOUT = 15.0
_REPO = Path(__file__).resolve().parent.parent


class QemuError(errors.Unavailable):
    reason = "QEMU_FAILED"


class QemuLaunchError(QemuError):
    """QEMU did not come up: carries what was run, how it ended and what the guest said."""

    reason = "QEMU_LAUNCH_FAILED"

    def __init__(self, message: str, *, argv: list[str], returncode: int | None,
                 console_tail: str = "", log_tail: str = ""):
        details = [message, f"command: {' '.join(argv)}",
                   f"exit code: {'still running' if returncode is None else returncode}"]
        if log_tail:
            details.append(f"qemu output:\n{log_tail}")
        if console_tail:
            details.append(f"console (tail):\n{console_tail}")
        super().__init__("\n".join(details))
        self.argv, self.returncode = argv, returncode
        self.console_tail, self.log_tail = console_tail, log_tail


def default_image_dir() -> Path:
    """Where deploy/qemu/build_image.py puts the image (same rule as the script)."""
    if explicit := os.environ.get("GENODE_MIGRATE_QEMU_DIR"):
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "genode-migrate" / "qemu"


def board_append(name: str, *, python: str = sys.executable, repo: Path = _REPO,
                 rom_dir: str | None = None, board_args: tuple[str, ...] = ()) -> str:
    """The kernel command line that tells our image's init which board to run, and how.

    The guest chroots into the host's root, so host paths work unchanged.
    """
    from genode_cr.emu import default_rom_dir
    values = {"gcr.name": name, "gcr.python": python, "gcr.repo": str(repo),
              "gcr.roms": str(rom_dir or default_rom_dir())}
    if board_args:
        values["gcr.args"] = ",".join(board_args)
    for key, value in values.items():
        if not value or re.search(r"[\s\"']", value) or any("," in a for a in board_args):
            raise errors.RequestError(f"{key}={value!r} cannot go on a kernel command line "
                                      "(empty, or spaces, quotes or commas in a value)")
    return " ".join(["console=ttyS0", "panic=-1", "quiet"]
                    + [f"{k}={v}" for k, v in values.items()])


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _kvm_flag(image_dir: Path) -> Path:
    return image_dir / "kvm-probe.json"


def kvm_usable(image_dir: Path, *, timeout: float = KVM_PROBE_TIMEOUT) -> bool:
    """Whether a KVM guest of this image reaches its init and powers off within ``timeout``."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    stamp = (image_dir / "stamp").read_text().strip() if (image_dir / "stamp").exists() else ""
    with contextlib.suppress(OSError, ValueError, KeyError):
        cached = json.loads(_kvm_flag(image_dir).read_text())
        if cached["stamp"] == stamp:
            return bool(cached["kvm"])
    with tempfile.TemporaryDirectory(prefix="kvm-probe-") as scratch:
        console = Path(scratch) / "console.log"
        argv = [QEMU, "-accel", "kvm", "-cpu", "host", "-m", "256M", "-nodefaults",
                "-no-user-config", "-display", "none", "-no-reboot",
                "-kernel", str(image_dir / "vmlinuz"), "-initrd", str(image_dir / "initrd.img"),
                "-append", "console=ttyS0 panic=-1 gcr.probe=1", "-serial", f"file:{console}"]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=timeout)
            usable = done.returncode == 0 and "probe ok" in console.read_text(errors="replace")
        except subprocess.TimeoutExpired:        # subprocess.run killed it
            usable = False
    with contextlib.suppress(OSError):
        _kvm_flag(image_dir).write_text(json.dumps({"stamp": stamp, "kvm": usable}) + "\n")
    return usable


class QemuBoard:
    """One board in one QEMU instance; a context manager.

    ``board_args`` go to ``genode-cr board serve`` in the guest (no commas).

    ``image_dir`` holds our vmlinuz and initrd.img; ``kernel``/``initrd``/
    ``append`` or ``image`` (a disk or ISO image) boot a user's system instead,
    with the same serial and QMP wiring (and no 9p share).
    """

    def __init__(self, name: str, image_dir: Path | str | None = None, *, kvm: str = "auto",
                 memory: str = "512M", log_dir: Path | str | None = None,
                 kernel: Path | str | None = None, initrd: Path | str | None = None,
                 append: str | None = None, image: Path | str | None = None,
                 board_args: tuple[str, ...] = (), rom_dir: str | None = None,
                 uart_port: int = 0):
        if kvm not in ("auto", "on", "off"):
            raise errors.RequestError(f"kvm must be auto, on or off, not {kvm!r}")
        self.name = name
        self.image_dir = Path(image_dir) if image_dir else default_image_dir()
        self.kvm_mode, self.memory = kvm, memory
        self.log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix=f"qemu-{name}-"))
        self.kernel, self.initrd, self.image = kernel, initrd, image
        self.append = append
        self.board_args, self.rom_dir = tuple(board_args), rom_dir
        #: 0: QEMU picks one. A board booted again on its predecessor's port keeps its
        #: agent: the agent reconnects to the same URL, as to a board power-cycled on hardware.
        self.uart_port = uart_port
        self.console_log = self.log_dir / "console.log"
        self.qemu_log = self.log_dir / "qemu.log"
        self.uart_url = ""
        self.kvm = False
        self.argv: list[str] = []
        self.process: subprocess.Popen | None = None
        self.boot_seconds = 0.0
        self._started = 0.0
        self._qmp: QMPClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._socket_dir = ""

    # --- the command line --------------------------------------------------------------

    def _boot_args(self) -> list[str]:
        if self.image:
            image = str(self.image)
            if image.endswith(".iso"):
                return ["-cdrom", image]
            return ["-drive", f"file={image},format=raw,if=ide"]
        kernel = Path(self.kernel) if self.kernel else self.image_dir / "vmlinuz"
        initrd = Path(self.initrd) if self.initrd else (
            None if self.kernel else self.image_dir / "initrd.img")
        for path in (kernel, initrd):
            if path is not None and not path.exists():
                raise QemuLaunchError(
                    f"{path} is missing (build the image: make qemu-image)",
                    argv=[QEMU], returncode=None)
        append = self.append if self.append is not None else board_append(
            self.name, rom_dir=self.rom_dir, board_args=self.board_args)
        args = ["-kernel", str(kernel), "-append", append]
        if initrd is not None:
            args += ["-initrd", str(initrd)]
        if not self.kernel:        # our image runs the board from the host's files
            args += ["-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,"
                                "readonly=on,multidevs=remap,id=hostroot"]
        return args

    def command(self, qmp_socket: str) -> list[str]:
        accel = ["-accel", "kvm", "-cpu", "host"] if self.kvm else ["-accel", "tcg", "-cpu", "max"]
        return [QEMU, "-name", self.name, *accel, "-m", self.memory, "-smp", "1",
                "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-S",
                "-qmp", f"unix:{qmp_socket},server=on,wait=off",
                "-serial", f"file:{self.console_log}",
                "-chardev", f"socket,id=cr,host=127.0.0.1,port={self.uart_port},server=on,wait=off,nodelay=on",
                "-serial", "chardev:cr",
                *self._boot_args()]

    # --- life cycle ----------------------------------------------------------------------

    def __enter__(self) -> QemuBoard:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        if shutil.which(QEMU) is None:
            raise QemuLaunchError(f"{QEMU} is not installed (Debian: qemu-system-x86)",
                                  argv=[QEMU], returncode=None)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.kvm_mode == "on":
            self.kvm = True
        elif self.kvm_mode == "auto" and not (self.kernel or self.image):
            self.kvm = kvm_usable(self.image_dir)
        # A unix socket path is limited to ~108 bytes: keep it short, apart from the logs.
        self._socket_dir = tempfile.mkdtemp(prefix="qmp-")
        qmp_socket = os.path.join(self._socket_dir, "qmp.sock")
        try:
            self.argv = self.command(qmp_socket)
        except BaseException:
            self.close()
            raise
        self._started = time.monotonic()
        with open(self.qemu_log, "wb") as out:
            self.process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_socket(qmp_socket)
            # QMP is asyncio; a loop of our own in a thread gives callers a plain API.
            self._loop = asyncio.new_event_loop()
            self._loop_thread = threading.Thread(target=self._loop.run_forever,
                                                 name=f"qmp-{self.name}", daemon=True)
            self._loop_thread.start()
            self._qmp = QMPClient(self.name)
            self._call(self._qmp.connect(qmp_socket))
            self.uart_url = self._uart_url()
            self.execute("cont")
        except QemuLaunchError:
            self.close()
            raise
        except BaseException as error:
            returncode = self.process.poll()
            self.close()
            if not isinstance(error, Exception):      # Ctrl-C and the like stay what they are
                raise
            raise QemuLaunchError(f"{self.name}: QEMU did not start ({error!r})", argv=self.argv,
                                  returncode=returncode, console_tail=_tail(self.console_log),
                                  log_tail=_tail(self.qemu_log)) from error

    def _launch_error(self, message: str) -> QemuLaunchError:
        return QemuLaunchError(message, argv=self.argv,
                               returncode=self.process.poll() if self.process else None,
                               console_tail=_tail(self.console_log), log_tail=_tail(self.qemu_log))

    def _wait_socket(self, path: str) -> None:
        deadline = time.monotonic() + QMP_DEADLINE
        while not os.path.exists(path):
            if self.process.poll() is not None:
                raise self._launch_error(f"{self.name}: QEMU exited at start")
            if time.monotonic() > deadline:
                raise self._launch_error(f"{self.name}: no QMP socket after {QMP_DEADLINE} s")
            time.sleep(0.02)

    def _uart_url(self) -> str:
        for chardev in self.execute("query-chardev"):
            if chardev["label"] == "cr":
                # "disconnected:tcp:127.0.0.1:42363,server=on"
                if m := re.search(r"tcp:([\d.]+):(\d+)", chardev["filename"]):
                    return f"socket://{m[1]}:{m[2]}"
        raise self._launch_error(f"{self.name}: QMP reports no TCP port for the CR chardev")

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Waits for the guest's board server's ready line; returns seconds since launch."""
        marker = f"{self.name} listening on"
        deadline = time.monotonic() + timeout
        while True:
            text = self.console_log.read_text(errors="replace") if self.console_log.exists() \
                else ""
            if marker in text:
                self.boot_seconds = time.monotonic() - self._started
                return self.boot_seconds
            if not self.alive():
                raise self._launch_error(f"{self.name}: QEMU ended before the board came up")
            if "board server exited" in text or "genode-migrate: cannot" in text:
                raise self._launch_error(f"{self.name}: the board server did not start")
            if time.monotonic() > deadline:
                raise self._launch_error(f"{self.name}: board not up after {timeout} s")
            time.sleep(0.1)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def close(self) -> None:
        """Ends QEMU (graceful quit, then SIGKILL) and the QMP connection; idempotent."""
        if self.alive() and self._qmp is not None:
            with contextlib.suppress(Exception):
                self.quit(timeout=QUIT_GRACE)
        if self.alive():
            self.kill()
        if self._qmp is not None and self._loop is not None:
            with contextlib.suppress(Exception):
                self._call(self._qmp.disconnect(), timeout=5)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(5)
            if not self._loop.is_running():
                self._loop.close()
            self._loop, self._loop_thread = None, None
        self._qmp = None
        if self._socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = ""

    # --- QMP -------------------------------------------------------------------------------

    def _call(self, coroutine, timeout: float = QMP_DEADLINE) -> Any:
        if self._loop is None:
            coroutine.close()
            raise QemuError(f"{self.name}: not connected to QMP")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise QemuError(f"{self.name}: QMP did not answer within {timeout} s") from None

    def execute(self, command: str, arguments: dict | None = None) -> Any:
        """A QMP command's return value; QemuError when it fails or QEMU is gone."""
        if self._qmp is None:
            raise QemuError(f"{self.name}: not connected to QMP")
        try:
            return self._call(self._qmp.execute(command, arguments))
        except (QMPError, EOFError, ConnectionError) as error:
            raise QemuError(f"{self.name}: QMP {command} failed: {error!r}") from None

    def status(self) -> str:
        """QMP's run state ("running", "paused", "prelaunch", ...), or "exited"."""
        if not self.alive():
            return "exited"
        try:
            return self.execute("query-status")["status"]
        except QemuError:
            return "exited" if not self.alive() else "unknown"

    def pause(self) -> None:
        self.execute("stop")

    def resume(self) -> None:
        self.execute("cont")

    def quit(self, timeout: float = QUIT_GRACE) -> int:
        """QMP quit; waits for the process to end. QEMU closes QMP as it goes."""
        with contextlib.suppress(QemuError):     # QEMU may close QMP before it answers
            self.execute("quit")
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise QemuError(f"{self.name}: QEMU still runs {timeout} s after quit") from None

    def kill(self) -> int:
        """SIGKILL, as a crash of the machine: no shutdown of anything in it."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        return self.process.wait(QUIT_GRACE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m migrate.qemu",
        description="Boot one board in QEMU; print its UART URL; run until Ctrl-C or SIGTERM.")
    parser.add_argument("--name", required=True)
    parser.add_argument("--image-dir", type=Path, default=None,
                        help="our image [default: $GENODE_MIGRATE_QEMU_DIR or "
                             "$XDG_CACHE_HOME/genode-migrate/qemu]")
    parser.add_argument("--image", help="boot this disk or ISO image instead of ours")
    parser.add_argument("--kernel", help="boot this kernel instead of ours")
    parser.add_argument("--initrd")
    parser.add_argument("--append", help="kernel command line (with --kernel)")
    parser.add_argument("--kvm", choices=("auto", "on", "off"), default="auto")
    parser.add_argument("--memory", default="512M")
    parser.add_argument("--log-dir", type=Path, default=None)
    parser.add_argument("--no-wait", action="store_true",
                        help="do not wait for the board server's ready line on the console")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        with QemuBoard(args.name, args.image_dir, kvm=args.kvm, memory=args.memory,
                       log_dir=args.log_dir, kernel=args.kernel, initrd=args.initrd,
                       append=args.append, image=args.image) as vm:
            print(f"{args.name} uart {vm.uart_url}", flush=True)
            print(f"console log {vm.console_log} ({'kvm' if vm.kvm else 'tcg'})", flush=True)
            if not (args.no_wait or args.kernel or args.image):
                print(f"{args.name} ready after {vm.wait_ready():.1f} s", flush=True)
            # The QMP socket is ours alone: others (``migrate lab status``) read the
            # machine's run state from a file beside the console log.
            state = vm.log_dir / "state"
            while not stop.wait(0.5) and vm.alive():
                state.write_text(vm.status() + "\n")
            state.write_text("exited\n")
    except errors.MigrateError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
