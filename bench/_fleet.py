"""What bench/migration.py and bench/fleet.py share: a lab of their own, and
moves followed to their end.

``LabRun`` starts a lab (``migrate.lab.start_lab``: board servers, an agent
per board, a coordinator, each a process) with XDG_STATE_HOME and
XDG_CONFIG_HOME pointed at a fresh temporary directory, so a user's own lab
and client configuration are never touched, and stops every process of it
when the ``with`` block ends, on success, failure, Ctrl-C or SIGTERM. Its
logs are kept (and their directory printed) when the block ends in an error.

Not a benchmark: ``make bench`` runs every bench/*.py, and running this one
only says so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from genode_cr.emu import default_rom_dir  # noqa: E402
from migrate import lab as labs  # noqa: E402
from migrate.client import CoordinatorClient  # noqa: E402
from migrate.v1 import resources_pb2 as rpb  # noqa: E402
from migrate.polling import wait_for

__all__ = ["LabRun", "TERMINAL", "cpu_seconds", "finish", "phase_name", "rss_bytes",
           "wait_for"]

T = TypeVar("T")

TERMINAL = {rpb.MOVE_PHASE_DONE, rpb.MOVE_PHASE_FAILED, rpb.MOVE_PHASE_ROLLED_BACK,
            rpb.MOVE_PHASE_CANCELLED}
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def finish(client: CoordinatorClient, move_id: str, timeout: float | None = None) -> rpb.Move:
    """Watches the move to its end (WatchMove) and returns its last state.

    TimeoutError if it has not ended after ``timeout`` seconds: a hung move
    ends the benchmark instead of hanging it.
    """
    box: dict[str, object] = {}

    def watch() -> None:
        try:
            last = None
            for last in client.watch_move(move_id):
                pass
            box["move"] = last
        except BaseException as error:  # noqa: BLE001 - handed to the caller
            box["error"] = error

    watcher = threading.Thread(target=watch, name=f"watch {move_id}", daemon=True)
    watcher.start()
    watcher.join(timeout)
    if watcher.is_alive():
        raise TimeoutError(f"move {move_id} did not end within {timeout:g} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    last = box.get("move")
    if not isinstance(last, rpb.Move) or last.phase not in TERMINAL:   # the stream broke off
        last = client.get_move(move_id)
    return last


def phase_name(phase: int) -> str:
    return rpb.MovePhase.Name(phase).removeprefix("MOVE_PHASE_").lower()


def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rfind(")") + 2:].split()           # fields 3.. (state first)


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process so far (its threads included, not its children)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK   # fields 14 and 15


def rss_bytes(pids: list[int]) -> int:
    """Resident memory of the processes together (0 for those gone)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(_stat_fields(pid)[21]) * _PAGE     # field 24: rss in pages
    return total


class LabRun:
    """``with LabRun(boards, baud) as run:`` a running lab, stopped at the end.

    Attributes (inside the block): ``lab`` (migrate.lab.Lab), ``client`` (a
    CoordinatorClient), ``boards`` (names, in order), ``coordinator_pid``.
    """

    def __init__(self, boards: int, baud: int, *, ready_deadline: float = 120.0,
                 say: Callable[[str], None] = lambda message: None):
        self.count = boards
        self.baud = baud
        self.ready_deadline = ready_deadline
        self.say = say
        self.lab: labs.Lab | None = None
        self.client: CoordinatorClient | None = None
        self.dir: Path | None = None
        self._clients: list[CoordinatorClient] = []
        self._saved_env: dict[str, str] = {}
        self._saved_handlers: dict[int, object] = {}

    # --- the lab's processes ------------------------------------------------------------

    @property
    def boards(self) -> list[str]:
        assert self.lab is not None
        return [b.name for b in self.lab.boards]

    @property
    def coordinator_pid(self) -> int:
        assert self.lab is not None
        process = self.lab.process("coordinator")
        assert process is not None
        return process.pid

    def pids(self, role: str | None = None) -> list[int]:
        assert self.lab is not None
        return [p.pid for p in self.lab.processes if role is None or p.role == role]

    def new_client(self, timeout: float = 60.0) -> CoordinatorClient:
        """Another channel to the coordinator, closed with the lab."""
        assert self.lab is not None
        client = labs.lab_client(self.lab, timeout=timeout)      # mutual TLS, as operator
        self._clients.append(client)
        return client

    # --- up and down ----------------------------------------------------------------------

    def __enter__(self) -> LabRun:
        self.dir = Path(tempfile.mkdtemp(prefix="genode-migrate-bench-"))
        self._isolate_environment()
        self._catch_termination()
        try:
            began = time.monotonic()
            self.lab = labs.start_lab(self.count, self.baud, ready_deadline=self.ready_deadline)
            self.client = self.new_client()
            names = set(self.boards)
            wait_for(lambda: names <= {b.name for b in self.client.list_boards()
                                       if b.health == rpb.BOARD_HEALTH_SERVING},
                     self.ready_deadline, f"all {self.count} boards serving")
            self.say(f"lab of {self.count} boards at {self.baud} baud up in "
                     f"{time.monotonic() - began:.1f} s (logs in {self.dir})")
        except BaseException as error:
            self.__exit__(type(error), error, error.__traceback__)
            raise
        return self

    def __exit__(self, kind, error, traceback) -> None:
        # Nothing may cut the stopping short: Ctrl-C, SIGTERM and SIGHUP are
        # ignored until every process is gone (a Ctrl-C can also surface
        # late, from inside grpc's channel close, as a second
        # KeyboardInterrupt), and the processes are stopped before anything
        # else is tidied up.
        caught = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in caught}
        try:
            self._stop_processes()
            for client in self._clients:
                with contextlib.suppress(BaseException):
                    client.close()
            self._clients.clear()
            if self.dir is not None:
                if error is None or isinstance(error, KeyboardInterrupt):
                    shutil.rmtree(self.dir, ignore_errors=True)
                else:
                    print(f"lab logs kept in {self.dir / 'state' / 'genode-migrate' / 'lab'}",
                          file=sys.stderr)
        finally:
            self._restore_environment()
            for signum, handler in {**previous, **self._saved_handlers}.items():
                signal.signal(signum, handler)

    def _stop_processes(self) -> None:
        for attempt in range(3):
            try:
                _, outcome = labs.stop_lab()
            except labs.NoLab:
                return
            except BaseException as error:  # noqa: BLE001 - try again, then say so
                if attempt == 2:
                    print(f"warning: stopping the lab failed ({error!r}); its processes are "
                          f"recorded in {labs.lab_file()}", file=sys.stderr)
                continue
            left = [name for name, state in outcome.items() if state == "still running"]
            if left:
                print(f"warning: lab processes survived SIGKILL: {', '.join(left)}",
                      file=sys.stderr)
            return

    def _isolate_environment(self) -> None:
        assert self.dir is not None
        wanted = {"XDG_STATE_HOME": str(self.dir / "state"),
                  "XDG_CONFIG_HOME": str(self.dir / "config"),
                  "GENODE_CR_ROM_DIR": str(default_rom_dir())}
        # A user's MIGRATE_CONFIG or board settings must not leak into the lab.
        for key in [k for k in os.environ if k.startswith(("GENODE_CR_", "MIGRATE_"))]:
            self._saved_env[key] = os.environ.pop(key)
        for key, value in wanted.items():
            self._saved_env.setdefault(key, os.environ.get(key, ""))
            os.environ[key] = value

    def _restore_environment(self) -> None:
        for key, value in self._saved_env.items():
            if value:
                os.environ[key] = value
            else:
                os.environ.pop(key, None)
        self._saved_env.clear()

    def _catch_termination(self) -> None:
        """SIGTERM and SIGHUP end the run as Ctrl-C does, through __exit__."""
        def interrupt(signum, frame):  # noqa: ANN001
            raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")
        for signum in (signal.SIGTERM, signal.SIGHUP):
            self._saved_handlers[signum] = signal.signal(signum, interrupt)


if __name__ == "__main__":
    print("bench/_fleet.py is the helper of bench/migration.py and bench/fleet.py, "
          "not a benchmark")
