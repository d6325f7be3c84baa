"""Mutual TLS and roles at an agent: whoever may call an agent owns its board, so only
its own coordinator may do anything but read the board. A real board, a real agent
serving TLS, real certificates from migrate.security.pki."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest
from cryptography.hazmat.primitives import serialization

from genode_cr.v1 import board_pb2 as bpb
from migrate import rpc
from migrate.agent.servicer import ACCESS
from migrate.security import COORDINATOR, Identity, Role, TlsConfig, channel_credentials
from migrate.security import target_name_options
from migrate.security.pki import init_lab, issue, load_ca, write_certificate, write_private_key
from migrate.v1 import agent_pb2 as apb
from migrate.v1 import agent_pb2_grpc

from .conftest import DEADLINE, AgentThread, BoardThread, wait_for

BOARD = Identity(Role.AGENT, "boardA")
STANDBY = Identity(Role.COORDINATOR, "standby")      # a coordinator, but not this agent's
CALLERS = {
    "its coordinator": COORDINATOR,
    "another coordinator": STANDBY,
    "operator": Identity(Role.OPERATOR, "operator"),
    "viewer": Identity(Role.VIEWER, "viewer"),
    "an agent": BOARD,
}

#: Requests that name nothing that exists: a permitted call fails after authorization
#: (or succeeds) and changes nothing.
NO_SESSION = 999_999
REQUESTS = {
    "GetBoard": apb.AgentServiceGetBoardRequest(),
    "ListComponents": apb.AgentServiceListComponentsRequest(),
    "StartComponent": apb.AgentServiceStartComponentRequest(name="x", rom="no-such-rom"),
    "PauseComponent": apb.AgentServicePauseComponentRequest(name="no-such-component"),
    "ResumeComponent": apb.AgentServiceResumeComponentRequest(name="no-such-component"),
    "KillComponent": apb.AgentServiceKillComponentRequest(name="no-such-component"),
    "StreamLogs": apb.AgentServiceStreamLogsRequest(name="no-such-component"),
    "Checkpoint": apb.AgentServiceCheckpointRequest(name="no-such-component"),
    "BeginRestore": None,                 # begins a session: see test_stage_...
    "StageCheckpoint": apb.AgentServiceStageCheckpointRequest(
        session=NO_SESSION, start=bpb.CheckpointStart()),
    "GetStageStatus": apb.AgentServiceGetStageStatusRequest(session=NO_SESSION),
    "CommitRestore": apb.AgentServiceCommitRestoreRequest(session=NO_SESSION),
    "AbortRestore": apb.AgentServiceAbortRestoreRequest(session=NO_SESSION),
}
DENIALS = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)


def add_identity(directory, identity: Identity, **issue_options) -> TlsConfig | tuple:
    """A certificate for ``identity`` from the lab's CA, written next to the others."""
    key, certificate = issue(*load_ca(directory), identity, **issue_options)
    write_private_key(directory / f"{identity.file_stem}.key", key)
    write_certificate(directory / f"{identity.file_stem}.crt", certificate)
    return TlsConfig.from_directory(directory, identity)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    made = init_lab(tmp_path_factory.mktemp("certs"), boards=["boardA"])
    add_identity(made.directory, STANDBY)
    return made


@pytest.fixture(scope="module")
def secured(certs):
    """boardA and its agent serving mutual TLS, for the module."""
    board = BoardThread("boardA")
    agent = AgentThread(board.url, tls=certs.tls(BOARD), client_tls=certs.tls(COORDINATOR))
    try:
        wait_for(lambda: agent.status() == rpc.SERVING, "the agent serving")
        yield agent
    finally:
        agent.close()
        board.stop()


def stub(agent: AgentThread, certs, identity: Identity):
    channel = grpc.secure_channel(agent.address, channel_credentials(certs.tls(identity)),
                                  options=target_name_options(BOARD))
    return channel, agent_pb2_grpc.AgentServiceStub(channel)


def call(service, method: str, request) -> tuple[grpc.StatusCode, grpc.RpcError | None]:
    try:
        if method == "StageCheckpoint":
            service.StageCheckpoint(iter([request]), timeout=DEADLINE)
        elif method in ("StreamLogs", "Checkpoint"):
            for _ in getattr(service, method)(request, timeout=DEADLINE):
                pass
        else:
            getattr(service, method)(request, timeout=DEADLINE)
    except grpc.RpcError as error:
        return error.code(), error
    return grpc.StatusCode.OK, None


def test_the_table_covers_every_call():
    methods = apb.DESCRIPTOR.services_by_name["AgentService"].methods_by_name
    assert set(ACCESS) == set(methods) == set(REQUESTS)


@pytest.mark.parametrize("caller", CALLERS)
def test_each_caller_against_each_call(secured, certs, caller):
    identity = CALLERS[caller]
    channel, service = stub(secured, certs, identity)
    with channel:
        for method, request in REQUESTS.items():
            if request is None:
                continue
            code, error = call(service, method, request)
            if identity == COORDINATOR or method == "GetBoard":
                assert code not in DENIALS, (caller, method, code, error)
                continue
            assert code == grpc.StatusCode.PERMISSION_DENIED, (caller, method, code)
            assert error.details() == (f"{identity.uri} may not call AgentService.{method}; "
                                       f"allowed: {COORDINATOR.uri}")


def test_stage_from_an_operator_is_refused_and_stages_nothing(secured, certs):
    coordinator = secured.stub                         # the agent's own coordinator
    session = coordinator.BeginRestore(apb.AgentServiceBeginRestoreRequest(name="counter"),
                                       timeout=DEADLINE).session
    try:
        channel, operator = stub(secured, certs, CALLERS["operator"])
        with channel:
            stage = apb.AgentServiceStageCheckpointRequest(
                session=session, start=bpb.CheckpointStart(page_count=1))
            code, error = call(operator, "StageCheckpoint", stage)
            assert code == grpc.StatusCode.PERMISSION_DENIED
            assert "operator/operator may not call AgentService.StageCheckpoint" in error.details()
            for method, request in (("CommitRestore", apb.AgentServiceCommitRestoreRequest(
                                        session=session)),
                                    ("AbortRestore", apb.AgentServiceAbortRestoreRequest(
                                        session=session))):
                assert call(operator, method, request)[0] == grpc.StatusCode.PERMISSION_DENIED
        status = coordinator.GetStageStatus(
            apb.AgentServiceGetStageStatusRequest(session=session), timeout=DEADLINE)
        assert (status.session, status.parts, status.rounds) == (session, 0, 0)
    finally:
        coordinator.AbortRestore(apb.AgentServiceAbortRestoreRequest(session=session),
                                 timeout=DEADLINE)


def test_a_certificate_without_an_identity_may_not_even_read(secured, certs):
    key, certificate = issue(*load_ca(certs.directory), None, uris=[])
    pem = serialization.Encoding.PEM
    credentials = grpc.ssl_channel_credentials(
        certs.ca.read_bytes(),
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        certificate.public_bytes(pem))
    with grpc.secure_channel(secured.address, credentials,
                             options=target_name_options(BOARD)) as channel:
        code, error = call(agent_pb2_grpc.AgentServiceStub(channel), "GetBoard",
                           REQUESTS["GetBoard"])
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert "carries no genode-migrate identity" in error.details()


def test_the_agent_process_serves_tls_or_refuses_to_start(boards, certs, tmp_path):
    a = boards("boardA")
    base = [sys.executable, "-m", "migrate.agent", "--board-url", a.url]
    tls = ["--tls-ca", str(certs.ca), "--tls-cert", str(certs.cert(BOARD)),
           "--tls-key", str(certs.key(BOARD))]
    refusals = {
        "missing --tls-key": [*base, "--listen", "127.0.0.1:0", *tls[:4]],
        "plaintext is allowed on loopback only": [*base, "--listen", "0.0.0.0:0",
                                                  "--plaintext"],
        "--plaintext and --tls-ca, --tls-cert, --tls-key: choose one": [
            *base, "--listen", "127.0.0.1:0", "--plaintext", *tls],
        "does not belong to the certificate": [
            *base, "--listen", "127.0.0.1:0", *tls[:4], "--tls-key",
            str(certs.key(COORDINATOR))],
    }
    for complaint, argv in refusals.items():
        result = subprocess.run(argv, capture_output=True, text=True, timeout=DEADLINE)
        assert result.returncode == 2 and complaint in result.stderr, (complaint, result)
        assert result.stdout == ""
