"""Identities, their forms, and the access policy that the gRPC edge asks."""

from __future__ import annotations

import pytest

from migrate import errors
from migrate.security import (ANY_PEER, COORDINATOR, LOCAL_OPERATOR, OPERATORS, READERS,
                              AccessPolicy, Identity, InvalidIdentity, Role, parse_identity,
                              peer_identity)
from migrate.security.identity import is_loopback_peer


def test_an_identity_has_a_uri_a_dns_form_and_a_file_stem():
    board = Identity(Role.AGENT, "boardA")
    assert board.uri == "spiffe://genode-migrate/agent/boardA" == str(board)
    assert board.dns_name == "boarda.agent.genode-migrate"
    assert board.file_stem == "agent-boardA"
    assert Identity("viewer", "ci") == Identity(Role.VIEWER, "ci")


@pytest.mark.parametrize("text", ["spiffe://genode-migrate/operator/alice", "operator/alice",
                                  "operator-alice", " operator/alice\n"])
def test_every_form_parses_to_the_same_identity(text):
    assert parse_identity(text) == Identity(Role.OPERATOR, "alice")


@pytest.mark.parametrize("text, complaint", [
    ("spiffe://example.org/operator/alice", "not in the trust domain"),
    ("spiffe://genode-migrate/root/alice", "unknown role 'root'"),
    ("operator/al/ice", "not an identity"),
    ("operator/", "not a valid identity name"),
    ("operator/al_ice", "not a valid identity name"),
    ("operator/" + "a" * 64, "not a valid identity name"),
    ("alice", "not an identity"),
])
def test_what_is_not_an_identity_is_refused_with_the_reason(text, complaint):
    with pytest.raises(InvalidIdentity, match=complaint):
        parse_identity(text)


@pytest.mark.parametrize("peer, local", [
    ("ipv4:127.0.0.1:4000", True), ("ipv6:[::1]:4000", True), ("unix:/run/x.sock", True),
    ("ipv4:10.0.0.5:4000", False), ("ipv6:[2001:db8::1]:4000", False), ("ipv4:nonsense", False),
])
def test_loopback_peers(peer, local):
    assert is_loopback_peer(peer) is local


class Context:
    """What a gRPC ServicerContext tells about its peer: the auth context and address."""

    def __init__(self, auth: dict, peer: str = "ipv4:127.0.0.1:5000"):
        self._auth, self._peer = auth, peer

    def auth_context(self):
        return self._auth

    def peer(self):
        return self._peer


def tls_peer(*sans: str) -> Context:
    return Context({"transport_security_type": [b"ssl"], "x509_subject": [b"CN=x"],
                    "x509_subject_alternative_name": [s.encode() for s in sans]})


def test_peer_identity_reads_the_san_uri_and_ignores_dns_and_ip():
    assert peer_identity(tls_peer("localhost", "127.0.0.1",
                                  "spiffe://genode-migrate/viewer/ci")) == \
        Identity(Role.VIEWER, "ci")
    assert peer_identity(Context({"transport_security_type": [b"insecure"]})) is None
    with pytest.raises(errors.Unauthenticated, match="not on loopback"):
        peer_identity(Context({"transport_security_type": [b"insecure"]}, "ipv4:10.1.1.1:9"))
    with pytest.raises(errors.Unauthenticated, match="no genode-migrate identity"):
        peer_identity(tls_peer("localhost"))


POLICY = AccessPolicy("TestService", {"Read": READERS, "Write": OPERATORS, "Hello": ANY_PEER,
                                      "Stage": frozenset({Role.COORDINATOR})},
                      local=LOCAL_OPERATOR, bound={Role.COORDINATOR: COORDINATOR})


def test_the_policy_allows_by_role_and_binds_the_coordinator():
    viewer, standby = Identity(Role.VIEWER, "v"), Identity(Role.COORDINATOR, "standby")
    assert POLICY.authorize("Read", viewer) == viewer
    assert POLICY.authorize("Write", None) == LOCAL_OPERATOR      # plaintext loopback caller
    assert POLICY.authorize("Hello", standby) == standby
    assert POLICY.authorize("Stage", COORDINATOR) == COORDINATOR
    with pytest.raises(errors.PermissionDenied) as denied:
        POLICY.authorize("Stage", standby)
    assert str(denied.value) == ("spiffe://genode-migrate/coordinator/standby may not call "
                                 "TestService.Stage; allowed: "
                                 "spiffe://genode-migrate/coordinator/coordinator")
    with pytest.raises(errors.PermissionDenied) as denied:
        POLICY.authorize("Write", viewer)
    assert denied.value.metadata == {"identity": viewer.uri, "method": "TestService.Write",
                                     "allowed": "operator"}


def test_a_call_missing_from_the_table_is_refused_to_everyone():
    for identity in (None, COORDINATOR, Identity(Role.OPERATOR, "root")):
        with pytest.raises(errors.PermissionDenied, match="allowed: nobody"):
            POLICY.authorize("NewCall", identity)


def test_denials_cross_the_wire_as_their_own_classes():
    for cls, code in ((errors.PermissionDenied, "PERMISSION_DENIED"),
                      (errors.Unauthenticated, "UNAUTHENTICATED")):
        rebuilt = errors.error_from_reason(cls.reason, "m", code)
        assert type(rebuilt) is cls and errors.status_of(rebuilt) == code
