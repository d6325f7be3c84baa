"""Mutual TLS and roles at the coordinator, with a real fleet (a board, its agent, a
coordinator, each a process) and real certificates: each role against each call,
and the certificates that must not get in (expired, another CA's, no identity)."""

from __future__ import annotations

import asyncio
import datetime
import os
import subprocess
import sys

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from genode_cr.emu import default_rom_dir
from migrate import errors
from migrate.client import CoordinatorClient
from migrate.config import BoardConfig, CoordinatorConfig
from migrate.coordinator.agents import AgentClient
from migrate.coordinator.server import start as start_coordinator
from migrate.coordinator.servicer import ACCESS
from migrate.security import COORDINATOR, Identity, PlaintextRefused, Role, target_name_options
from migrate.security.pki import create_ca, issue, load_ca
from migrate.v1 import coordinator_pb2 as pb
from migrate.v1 import coordinator_pb2_grpc as pb_grpc

from .conftest import Fleet

AGENT = Identity(Role.AGENT, "boardA")
ROLES = {
    "operator": Identity(Role.OPERATOR, "operator"),
    "viewer": Identity(Role.VIEWER, "viewer"),
    "agent": AGENT,
    "coordinator": COORDINATOR,
}

#: A request per call that names nothing that exists: a call the caller may make
#: fails after authorization (NOT_FOUND or INVALID_ARGUMENT) or succeeds, and changes
#: nothing either way.
REQUESTS = {
    "ListBoards": pb.ListBoardsRequest(),
    "ListComponents": pb.ListComponentsRequest(board="boardA"),
    "StartComponent": pb.StartComponentRequest(name="counter", board="no-such-board"),
    "KillComponent": pb.KillComponentRequest(name="no-such-component"),
    "StreamLogs": pb.StreamLogsRequest(name="no-such-component"),
    "PlanMove": pb.PlanMoveRequest(component="no-such-component", target_board="boardA"),
    "CreateMove": pb.CreateMoveRequest(component="no-such-component", target_board="boardA"),
    "GetMove": pb.GetMoveRequest(id="no-such-move"),
    "ListMoves": pb.ListMovesRequest(),
    "WatchMove": pb.WatchMoveRequest(id="no-such-move"),
    "CancelMove": pb.CancelMoveRequest(id="no-such-move"),
    "CreateCheckpoint": pb.CreateCheckpointRequest(component="no-such-component"),
    "ListCheckpoints": pb.ListCheckpointsRequest(),
    "GetCheckpoint": pb.GetCheckpointRequest(id="no-such-checkpoint"),
    "VerifyCheckpoint": pb.VerifyCheckpointRequest(id="no-such-checkpoint"),
    "DeleteCheckpoint": pb.DeleteCheckpointRequest(id="no-such-checkpoint"),
    "RestoreCheckpoint": pb.RestoreCheckpointRequest(id="no-such-checkpoint",
                                                     target_board="boardA"),
    "ListAuditEvents": pb.ListAuditEventsRequest(),
    "VerifyAuditLog": pb.VerifyAuditLogRequest(),
}
STREAMS = {"StreamLogs", "WatchMove"}
READS = {"ListBoards", "ListComponents", "StreamLogs", "PlanMove", "GetMove", "ListMoves",
         "WatchMove", "ListCheckpoints", "GetCheckpoint", "VerifyCheckpoint",
         "ListAuditEvents", "VerifyAuditLog"}


@pytest.fixture(scope="module")
def secured(tmp_path_factory, fleet_certs):
    """One board, its agent and a coordinator, mutual TLS everywhere; shared by the module
    (no test here changes the fleet)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GENODE_CR_", "MIGRATE_"))}
    env["GENODE_CR_ROM_DIR"] = str(default_rom_dir())
    f = Fleet(tmp_path_factory.mktemp("secured"), env, fleet_certs)
    try:
        f.start_board("boardA")
        f.start_agent("boardA")
        f.start_coordinator()
        f.wait_serving("boardA")
        yield f
    finally:
        f.close()


def call(channel: grpc.Channel, method: str, request
         ) -> tuple[grpc.StatusCode, grpc.RpcError | None]:
    """Makes the call: its status code (OK when it succeeded) and error."""
    stub = pb_grpc.CoordinatorServiceStub(channel)
    try:
        if method in STREAMS:
            for _ in getattr(stub, method)(request, timeout=20):
                pass
        else:
            getattr(stub, method)(request, timeout=20)
    except grpc.RpcError as error:
        return error.code(), error
    return grpc.StatusCode.OK, None


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    info = error_details_pb2.ErrorInfo()
    assert rpc_status.from_call(error).details[0].Unpack(info)
    return info


def test_the_table_covers_every_call_and_only_them():
    methods = pb.DESCRIPTOR.services_by_name["CoordinatorService"].methods_by_name
    assert set(ACCESS) == set(methods) == set(REQUESTS)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_against_each_call(secured, role):
    identity = ROLES[role]
    allowed = {"operator": set(REQUESTS), "viewer": READS}.get(role, set())
    with secured.channel(identity=identity) as channel:
        for method, request in REQUESTS.items():
            code, error = call(channel, method, request)
            if method in allowed:
                assert code in (grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND,
                                grpc.StatusCode.INVALID_ARGUMENT), (role, method, code)
                continue
            assert code == grpc.StatusCode.PERMISSION_DENIED, (role, method, code)
            info = error_info(error)
            expected = {"operator", "viewer"} if method in READS else {"operator"}
            assert set(info.metadata["allowed"].split(", ")) == expected
            assert info.reason == "PERMISSION_DENIED" and info.metadata["identity"] == identity.uri
            assert error.details() == (f"{identity.uri} may not call CoordinatorService."
                                       f"{method}; allowed: {info.metadata['allowed']}")


def test_our_client_raises_permission_denied_with_the_reason(secured):
    viewer = secured.client(identity=ROLES["viewer"])
    assert [b.name for b in viewer.list_boards()] == ["boardA"]
    with pytest.raises(errors.PermissionDenied) as denied:
        viewer.start_component("counter", "boardA")
    assert denied.value.reason == "PERMISSION_DENIED"
    assert denied.value.metadata["identity"] == ROLES["viewer"].uri
    assert not secured.client().list_components().components       # nothing started


# --- certificates that must not get in --------------------------------------------------------

def raw_credentials(ca_pem: bytes, key, certificate) -> grpc.ChannelCredentials:
    """Credentials from a key and certificate as they are, unchecked (TlsConfig would
    refuse an expired one before it is ever sent)."""
    from cryptography.hazmat.primitives import serialization
    return grpc.ssl_channel_credentials(
        root_certificates=ca_pem,
        private_key=key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()),
        certificate_chain=certificate.public_bytes(serialization.Encoding.PEM))


def forged(secured, *, ca=None, **issue_options) -> grpc.Channel:
    """A channel to the coordinator with a certificate made for the test."""
    ca_key, ca_certificate = load_ca(secured.certs.directory)
    signer = ca or (ca_key, ca_certificate)
    key, certificate = issue(*signer, issue_options.pop("identity", ROLES["operator"]),
                             **issue_options)
    return grpc.secure_channel(secured.coordinator.address,
                               raw_credentials(secured.certs.ca.read_bytes(), key, certificate),
                               options=target_name_options(COORDINATOR))


def test_expired_and_foreign_certificates_fail_the_handshake(secured):
    now = datetime.datetime.now(datetime.timezone.utc)
    expired = dict(not_before=now - datetime.timedelta(days=30),
                   not_after=now - datetime.timedelta(days=1))
    with forged(secured) as channel:                # the same, but valid and from our CA
        assert call(channel, "ListBoards", pb.ListBoardsRequest())[0] == grpc.StatusCode.OK
    for channel in (forged(secured, **expired), forged(secured, ca=create_ca())):
        with channel:
            assert call(channel, "ListBoards", pb.ListBoardsRequest())[0] == \
                grpc.StatusCode.UNAVAILABLE
    # Plaintext to a TLS port gets nowhere either; the coordinator serves on.
    with grpc.insecure_channel(secured.coordinator.address) as channel:
        assert call(channel, "ListBoards", pb.ListBoardsRequest())[0] == \
            grpc.StatusCode.UNAVAILABLE
    assert secured.coordinator.alive()
    assert [b.name for b in secured.client().list_boards()] == ["boardA"]


@pytest.mark.parametrize("uris, complaint", [
    ([], "carries no genode-migrate identity"),
    (["spiffe://example.org/operator/operator"], "carries no genode-migrate identity"),
    (["spiffe://genode-migrate/admin/root"], "unknown identity: unknown role 'admin'"),
    (["spiffe://genode-migrate/operator/a", "spiffe://genode-migrate/viewer/b"],
     "several identities"),
])
def test_a_certificate_without_a_usable_identity_is_unauthenticated(secured, uris, complaint):
    with forged(secured, uris=uris) as channel:
        code, error = call(channel, "ListBoards", pb.ListBoardsRequest())
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert complaint in error.details() and error_info(error).reason == "UNAUTHENTICATED"


def test_a_client_refuses_a_server_that_is_not_the_coordinator(secured):
    """The agent's certificate is from the same CA, but it is not the coordinator."""
    impostor = CoordinatorClient(secured.agents["boardA"].address, timeout=10,
                                 tls=secured.certs.tls(ROLES["operator"]))
    with impostor, pytest.raises(errors.Unauthenticated) as refused:
        impostor.list_boards()
    assert refused.value.reason == "TLS_HANDSHAKE_FAILED"


def test_the_coordinator_checks_each_agents_identity(secured):
    tls = secured.certs.tls(COORDINATOR)
    address = secured.agents["boardA"].address

    async def board(identity: Identity | None):
        client = AgentClient("boardA", address, tls=tls, identity=identity)
        try:
            return await client.get_board(timeout=10)
        finally:
            await client.close()

    assert asyncio.run(board(None)).name == "boardA"            # agent/boardA: expected
    with pytest.raises(errors.Unauthenticated, match="TLS handshake failed"):
        asyncio.run(board(Identity(Role.AGENT, "boardB")))      # someone else's address


# --- plaintext ------------------------------------------------------------------------------

def test_a_coordinator_refuses_plaintext_off_loopback(tmp_path):
    config = tmp_path / "coordinator.toml"
    config.write_text(f'[coordinator]\nlisten = "0.0.0.0:0"\nstate_dir = "{tmp_path}"\n')
    result = subprocess.run([sys.executable, "-m", "migrate.coordinator", "--config",
                             str(config)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stdout == ""
    assert "refusing to serve plaintext gRPC on 0.0.0.0:0: plaintext is allowed on loopback " \
           "only" in result.stderr
    # Also when embedded, and for agents it would reach in plaintext.
    for wrong in (CoordinatorConfig(listen="0.0.0.0:0", state_dir=tmp_path),
                  CoordinatorConfig(listen="127.0.0.1:0", state_dir=tmp_path,
                                    boards=[BoardConfig("boardA", "10.0.0.5:7701")])):
        with pytest.raises(PlaintextRefused):
            asyncio.run(start_coordinator(wrong))
    assert not list(tmp_path.glob("*.sqlite"))        # refused before it touched its state


def test_a_plaintext_coordinator_on_loopback_serves_its_local_operator(fleet):
    f = fleet(boards=("boardA",), plaintext=True)
    client = f.client()
    client.start_component("counter", "boardA")
    assert [c.name for c in client.list_components().components] == ["counter"]
