"""The CLI over mutual TLS: `migrate certs init`, the client's certificate from its
configuration or the environment, and what it says when TLS or a role stands in the way."""

from __future__ import annotations

import json

import pytest

from migrate import errors
from migrate.security import COORDINATOR, Identity, Role

from .conftest import FakeCoordinator, serve_fake


@pytest.fixture
def tls_coordinator(cli_certs):
    """A fake coordinator serving mutual TLS with the coordinator's certificate."""
    fake = FakeCoordinator()
    server, address = serve_fake(fake, cli_certs.tls(COORDINATOR))
    try:
        yield fake, address
    finally:
        server.stop(grace=None)


def test_certs_init_makes_a_lab_pki_and_then_keeps_it(migrate, xdg):
    first = migrate("certs", "init", "--board", "b1", "--board", "b2", "--viewer", "ci",
                    "-o", "json")
    assert first.exit_code == 0, first.output
    made = json.loads(first.stdout)
    directory = xdg / "config" / "genode-migrate" / "certs"
    assert made["dir"] == str(directory)
    assert made["identities"] == ["spiffe://genode-migrate/coordinator/coordinator",
                                  "spiffe://genode-migrate/agent/b1",
                                  "spiffe://genode-migrate/agent/b2",
                                  "spiffe://genode-migrate/operator/operator",
                                  "spiffe://genode-migrate/viewer/ci"]
    assert {"ca.crt", "ca.key", "agent-b2.crt", "agent-b2.signing.pub",
            "viewer-ci.key"} <= set(made["written"])
    assert all((directory / name).exists() for name in made["written"])
    again = migrate("certs", "init", "--board", "b1", "--board", "b2", "--viewer", "ci",
                    "--dir", str(directory))
    assert again.exit_code == 0 and again.stdout.startswith(f"{directory}: 0 files written")
    bad = migrate("certs", "init", "--board", "board_1")
    assert bad.exit_code == 2 and "not a valid identity name" in bad.stderr


def test_the_client_speaks_tls_with_the_configured_certificate(migrate, tls_coordinator,
                                                               cli_certs, xdg, monkeypatch):
    fake, address = tls_coordinator
    config = xdg / "client.toml"
    d = cli_certs.directory
    config.write_text(f'[client]\ncoordinator = "{address}"\n[tls]\nca = "{d}/ca.crt"\n'
                      f'cert = "{d}/viewer-viewer.crt"\nkey = "{d}/viewer-viewer.key"\n')
    assert migrate("--config", config, "boards", coordinator=None).exit_code == 0
    # The same from the environment, with the operator's certificate.
    monkeypatch.setenv("MIGRATE_TLS_DIR", str(d))
    monkeypatch.setenv("MIGRATE_IDENTITY", "operator/operator")
    assert migrate("ps", coordinator=address).exit_code == 0
    assert [m for m, _ in fake.requests] == ["ListBoards", "ListComponents"]
    # Denials from the coordinator leave with exit 7 and their message.
    fake.fail["StartComponent"] = errors.PermissionDenied(
        f"{Identity(Role.VIEWER, 'viewer').uri} may not call CoordinatorService."
        "StartComponent; allowed: operator")
    result = migrate("start", "counter", "--on", "boardA", coordinator=address)
    assert result.exit_code == 7
    assert result.stderr.startswith("Error: PERMISSION_DENIED: spiffe://genode-migrate/viewer/")


def test_plaintext_to_a_tls_coordinator_or_off_loopback_is_refused(migrate, tls_coordinator):
    _, address = tls_coordinator
    result = migrate("--timeout", "5", "boards", coordinator=address)     # plaintext client
    assert result.exit_code == 5 and result.stderr.startswith("Error: UNAVAILABLE: ")
    result = migrate("boards", coordinator="192.0.2.1:7700")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: PLAINTEXT_REFUSED: refusing to talk plaintext gRPC "
                                    "to the coordinator on 192.0.2.1:7700")


def test_a_server_that_is_not_the_coordinator_is_refused(migrate, cli_certs, monkeypatch):
    """Same CA, but an agent's certificate: the handshake fails on the client's side."""
    impostor = FakeCoordinator()
    server, address = serve_fake(impostor, cli_certs.tls(Identity(Role.AGENT, "boardA")))
    try:
        monkeypatch.setenv("MIGRATE_TLS_DIR", str(cli_certs.directory))
        monkeypatch.setenv("MIGRATE_IDENTITY", "operator-operator")
        result = migrate("--timeout", "5", "boards", coordinator=address)
    finally:
        server.stop(grace=None)
    assert result.exit_code == 7
    assert result.stderr.startswith("Error: TLS_HANDSHAKE_FAILED: ")
    assert not impostor.requests
