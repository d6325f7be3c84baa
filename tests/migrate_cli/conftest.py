"""Fixtures for the `migrate` CLI tests.

``fake_coordinator`` is a real gRPC server on 127.0.0.1 (port 0) serving
CoordinatorService from a servicer with state setters (Frequenz's mock_api):
the CLI and CoordinatorClient go through the real channel, status codes and
ErrorInfo details, so the error mapping is tested end to end, while the test
decides what the coordinator answers. The lab tests run real processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
from click.testing import CliRunner
from grpc_status import rpc_status

from migrate import errors, rpc
from migrate.cli import Settings, cli
from migrate.security import TlsConfig, server_credentials
from migrate.security.pki import LabCertificates, init_lab
from migrate.v1 import coordinator_pb2 as pb
from migrate.v1 import coordinator_pb2_grpc as pb_grpc
from migrate.v1 import resources_pb2 as res

VENV_BIN = Path(sys.executable).parent
#: The installed entry point, as a user runs it; `python -m` if it is not installed.
MIGRATE = ([str(VENV_BIN / "migrate")] if (VENV_BIN / "migrate").is_file()
           else [sys.executable, "-m", "migrate.cli"])

#: Guards so that a hang fails the test; no test asserts how long anything took.
DEADLINE = 30.0


class FakeCoordinator(pb_grpc.CoordinatorServiceServicer):
    """A coordinator whose answers the test sets.

    ``fail[method] = error`` makes that RPC fail with our error, mapped to its
    status as the real servicer maps it (migrate.rpc.status_for). A watched
    move streams ``watch_script`` (a list of Move); with ``hold_until_cancel``
    the stream then waits for CancelMove and sends ``cancelled_move``.
    """

    def __init__(self) -> None:
        self.boards: list[res.Board] = []
        self.components: list[res.Component] = []
        self.unreachable: list[str] = []
        self.moves: dict[str, res.Move] = {}
        self.log_lines: list[res.LogLine] = []
        self.watch_script: list[res.Move] = []
        self.hold_until_cancel = False
        self.plan = res.MovePlan()
        self.verify = pb.VerifyCheckpointResponse(ok=True, chain_length=1, pages_checked=3)
        self.checkpoint = pb.GetCheckpointResponse()
        self.fail: dict[str, BaseException] = {}
        self.requests: list[tuple[str, Any]] = []
        self.cancel_requested = threading.Event()

    # --- helpers -------------------------------------------------------------------------

    def _enter(self, method: str, request: Any, context: grpc.ServicerContext) -> None:
        self.requests.append((method, request))
        if method in self.fail:
            self._abort(context, self.fail[method])

    @staticmethod
    def _abort(context: grpc.ServicerContext, error: BaseException) -> None:
        """Ends the call as the real servicer does (migrate.rpc.map_errors)."""
        context.abort_with_status(rpc_status.to_status(rpc.status_for(error)))

    def calls(self, method: str) -> list[Any]:
        return [r for m, r in self.requests if m == method]

    # --- the service -----------------------------------------------------------------------

    def ListBoards(self, request, context):
        self._enter("ListBoards", request, context)
        return pb.ListBoardsResponse(boards=self.boards)

    def ListComponents(self, request, context):
        self._enter("ListComponents", request, context)
        found = [c for c in self.components if not request.board or c.board == request.board]
        return pb.ListComponentsResponse(components=found, unreachable_boards=self.unreachable)

    def StartComponent(self, request, context):
        self._enter("StartComponent", request, context)
        return pb.StartComponentResponse(component=res.Component(
            name=request.name, board=request.board, rom=request.rom or request.name,
            state="running", ram_quota_bytes=request.ram_quota_bytes or 1 << 20, threads=1))

    def KillComponent(self, request, context):
        self._enter("KillComponent", request, context)
        return pb.KillComponentResponse()

    def StreamLogs(self, request, context):
        self._enter("StreamLogs", request, context)
        lines = self.log_lines[-request.tail:] if request.tail else self.log_lines
        yield pb.StreamLogsResponse(lines=lines)

    def PlanMove(self, request, context):
        self._enter("PlanMove", request, context)
        return pb.PlanMoveResponse(plan=self.plan)

    def CreateMove(self, request, context):
        self._enter("CreateMove", request, context)
        move = res.Move(id=f"m{len(self.moves) + 1}", component=request.component,
                        source_board=request.source_board or "boardA",
                        target_board=request.target_board, options=request.options,
                        phase=res.MOVE_PHASE_PENDING)
        self.moves[move.id] = move
        return pb.CreateMoveResponse(move=move)

    def GetMove(self, request, context):
        self._enter("GetMove", request, context)
        if request.id not in self.moves:
            self._abort(context, errors.NotFound(f"no move {request.id}"))
        return pb.GetMoveResponse(move=self.moves[request.id])

    def ListMoves(self, request, context):
        self._enter("ListMoves", request, context)
        found = [m for m in self.moves.values()
                 if not request.component or m.component == request.component]
        start = int(request.page_token or 0)
        size = request.page_size or 50
        page = found[start:start + size]
        token = str(start + size) if start + size < len(found) else ""
        return pb.ListMovesResponse(moves=page, next_page_token=token)

    def WatchMove(self, request, context):
        self._enter("WatchMove", request, context)
        for step in self.watch_script:
            # The move as created, with what this step changes.
            move = _copy(self.moves[request.id])
            for field, _ in step.ListFields():
                move.ClearField(field.name)
            move.MergeFrom(step)
            self.moves[request.id] = move
            yield pb.WatchMoveResponse(move=move)
        if self.hold_until_cancel:
            while not self.cancel_requested.wait(0.05):
                if not context.is_active():
                    return
            yield pb.WatchMoveResponse(move=self.moves[request.id])

    def CancelMove(self, request, context):
        self._enter("CancelMove", request, context)
        move = self.moves[request.id]
        move.phase = res.MOVE_PHASE_CANCELLED
        move.cancel_requested = True
        self.cancel_requested.set()
        return pb.CancelMoveResponse(move=move)

    def CreateCheckpoint(self, request, context):
        self._enter("CreateCheckpoint", request, context)
        return pb.CreateCheckpointResponse(checkpoint=res.StoredCheckpoint(
            id="c1", component=request.component, board="boardA", sequence=1, pages=3,
            page_bytes=3 * 4096, stored_bytes=900))

    def ListCheckpoints(self, request, context):
        self._enter("ListCheckpoints", request, context)
        return pb.ListCheckpointsResponse(checkpoints=[self.checkpoint.checkpoint])

    def GetCheckpoint(self, request, context):
        self._enter("GetCheckpoint", request, context)
        return self.checkpoint

    def VerifyCheckpoint(self, request, context):
        self._enter("VerifyCheckpoint", request, context)
        return self.verify

    def DeleteCheckpoint(self, request, context):
        self._enter("DeleteCheckpoint", request, context)
        return pb.DeleteCheckpointResponse(deleted=2, freed_bytes=8192)

    def RestoreCheckpoint(self, request, context):
        self._enter("RestoreCheckpoint", request, context)
        return pb.RestoreCheckpointResponse(component=res.Component(
            name=request.name or "counter", board=request.target_board, state="running"))


def _copy(move: res.Move) -> res.Move:
    copy = res.Move()
    copy.CopyFrom(move)
    return copy


@pytest.fixture(scope="session")
def cli_certs(tmp_path_factory) -> LabCertificates:
    """A lab's certificates (`migrate certs init`'s), made once per session."""
    return init_lab(tmp_path_factory.mktemp("certs"), boards=["boardA", "boardB"])


def serve_fake(fake: FakeCoordinator, tls: TlsConfig | None = None) -> tuple[grpc.Server, str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=rpc.SERVER_OPTIONS)
    pb_grpc.add_CoordinatorServiceServicer_to_server(fake, server)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(tls)) if tls \
        else server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
def fake_coordinator() -> Iterator[tuple[FakeCoordinator, str]]:
    """(the fake, its host:port), served in plaintext on a thread pool until the test ends.
    The CLI's tests are about presentation; test_tls.py serves the fake over mutual TLS."""
    fake = FakeCoordinator()
    server, address = serve_fake(fake)
    try:
        yield fake, address
    finally:
        fake.cancel_requested.set()
        server.stop(grace=None).wait(DEADLINE)


@pytest.fixture
def xdg(tmp_path, monkeypatch) -> Path:
    """A private XDG state and config home (and no MIGRATE_* from the caller)."""
    for name in ("MIGRATE_CONFIG", "MIGRATE_COORDINATOR", "MIGRATE_TLS_DIR", "MIGRATE_IDENTITY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


@pytest.fixture
def migrate(fake_coordinator, xdg):
    """migrate(*args) -> click Result of one `migrate --coordinator FAKE ...` in this process."""
    _, address = fake_coordinator
    runner = CliRunner()

    def invoke(*args: object, coordinator: str | None = address):
        prefix = ["--coordinator", coordinator] if coordinator else []
        return runner.invoke(cli, [*prefix, *map(str, args)], obj=Settings(),
                             catch_exceptions=False)

    return invoke


@pytest.fixture
def process_env(xdg) -> dict[str, str]:
    """The environment of `migrate` processes a test starts: the private XDG homes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATE_")}
    env.pop("TERM", None)
    return env


def migrate_process(*args: object, env: dict[str, str], **kwargs: Any) -> subprocess.Popen:
    return subprocess.Popen([*MIGRATE, *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)
