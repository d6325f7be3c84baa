"""`migrate certs init`'s PKI and TLS files: what they hold, and how bad files are refused."""

from __future__ import annotations

import datetime
import ipaddress
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from migrate.errors import ConfigError
from migrate.security import COORDINATOR, Identity, Role, TlsConfig
from migrate.security.pki import init_lab, issue, load_ca, write_certificate, write_private_key
from migrate.security.tls import check_plaintext_allowed, is_loopback_address

OPERATOR = Identity(Role.OPERATOR, "operator")


def sans(path) -> x509.SubjectAlternativeName:
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def test_a_lab_gets_a_ca_a_certificate_per_identity_and_signing_keys(tmp_path):
    made = init_lab(tmp_path / "certs", boards=["boardA", "boardB"], operators=["alice"],
                    viewers=["ci"])
    d = made.directory
    assert [i.uri for i in made.identities] == [
        "spiffe://genode-migrate/coordinator/coordinator",
        "spiffe://genode-migrate/agent/boardA", "spiffe://genode-migrate/agent/boardB",
        "spiffe://genode-migrate/operator/alice", "spiffe://genode-migrate/viewer/ci"]
    ca = x509.load_pem_x509_certificate((d / "ca.crt").read_bytes())
    for identity in made.identities:
        certificate = x509.load_pem_x509_certificate(made.cert(identity).read_bytes())
        certificate.verify_directly_issued_by(ca)
        assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
        assert certificate.public_key().curve.name == "secp256r1"
        names = sans(made.cert(identity))
        assert names.get_values_for_type(x509.UniformResourceIdentifier) == [identity.uri]
        dns = names.get_values_for_type(x509.DNSName)
        if identity.role in (Role.COORDINATOR, Role.AGENT):
            assert dns == [identity.dns_name, "localhost"]
            assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
            signing = serialization.load_pem_private_key(
                (d / f"{identity.file_stem}.signing.key").read_bytes(), None)
            public = serialization.load_pem_public_key(
                (d / f"{identity.file_stem}.signing.pub").read_bytes())
            assert isinstance(signing, ed25519.Ed25519PrivateKey)
            public.verify(signing.sign(b"checkpoint"), b"checkpoint")
        else:
            assert dns == [] and not (d / f"{identity.file_stem}.signing.key").exists()
        assert TlsConfig.from_directory(d, identity).identity == identity
    for key in [*d.glob("*.key")]:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_init_again_keeps_what_is_valid_and_adds_what_is_missing(tmp_path):
    first = init_lab(tmp_path, boards=["boardA"])
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert init_lab(tmp_path, boards=["boardA"]).written == []
    grown = init_lab(tmp_path, boards=["boardA", "boardB"])
    assert sorted(grown.written) == sorted(["agent-boardB.key", "agent-boardB.crt",
                                            "agent-boardB.signing.key",
                                            "agent-boardB.signing.pub"])
    assert all(tmp_path.joinpath(name).read_bytes() == data for name, data in before.items())
    # A certificate that is not the CA's (or not the identity's) is issued anew.
    other = init_lab(tmp_path / "other", boards=[])
    (tmp_path / "operator-operator.crt").write_bytes(
        (other.directory / "operator-operator.crt").read_bytes())
    assert init_lab(tmp_path, boards=[]).written == ["operator-operator.key",
                                                     "operator-operator.crt"]
    assert first.tls(OPERATOR).identity == OPERATOR


def test_a_ca_without_its_key_cannot_issue(tmp_path):
    init_lab(tmp_path, boards=[])
    (tmp_path / "ca.key").unlink()
    with pytest.raises(ConfigError, match="ca.key does not exist"):
        init_lab(tmp_path, boards=["boardA"])


@pytest.fixture
def lab(tmp_path):
    return init_lab(tmp_path, boards=["boardA"])


def test_tls_files_are_checked_when_loaded(lab, tmp_path):
    d = lab.directory
    ca, cert, key = d / "ca.crt", lab.cert(OPERATOR), lab.key(OPERATOR)
    (tmp_path / "garbage.pem").write_text("hello")
    cases = [
        ((d / "nope.crt", cert, key), "the TLS CA certificate .*nope.crt does not exist"),
        ((ca, tmp_path / "garbage.pem", key), "is not a PEM file"),
        ((ca, cert, lab.key(COORDINATOR)), "does not belong to the certificate"),
    ]
    now = datetime.datetime.now(datetime.timezone.utc)
    old_key, old = issue(*load_ca(d), OPERATOR, not_before=now - datetime.timedelta(days=9),
                         not_after=now - datetime.timedelta(days=2))
    write_private_key(tmp_path / "old.key", old_key)
    write_certificate(tmp_path / "old.crt", old)
    cases.append(((ca, tmp_path / "old.crt", tmp_path / "old.key"), "expired on"))
    ed_key = ed25519.Ed25519PrivateKey.generate()
    write_private_key(tmp_path / "ed.key", ed_key)
    cases.append(((ca, cert, tmp_path / "ed.key"), "EdDSA key, which gRPC's TLS cannot use"))
    encrypted = serialization.load_pem_private_key(key.read_bytes(), None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"))
    (tmp_path / "locked.key").write_bytes(encrypted)
    cases.append(((ca, cert, tmp_path / "locked.key"), "is encrypted"))
    for files, complaint in cases:
        with pytest.raises(ConfigError, match=complaint):
            TlsConfig.load(*files)
    assert TlsConfig.load(ca, cert, key).identity == OPERATOR


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1:7700", True), ("localhost:7700", True), ("[::1]:7700", True),
    ("127.8.9.10:1", True), ("unix:/run/migrate.sock", True), ("ipv4:127.0.0.1:80", True),
    ("0.0.0.0:7700", False), ("[::]:7700", False), (":7700", False),
    ("10.0.0.11:7701", False), ("coordinator.example.org:7700", False),
])
def test_plaintext_only_on_loopback(address, loopback):
    assert is_loopback_address(address) is loopback
    if loopback:
        check_plaintext_allowed(address)
    else:
        with pytest.raises(ConfigError, match="plaintext is allowed on loopback only"):
            check_plaintext_allowed(address)
