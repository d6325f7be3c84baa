"""A development PKI for a lab: a CA and a certificate per identity (``migrate certs init``).

``init_lab`` makes, in one directory::

    ca.crt  ca.key                                  the CA (ECDSA P-256, 10 years)
    coordinator-coordinator.crt/.key                the coordinator (server and client)
    agent-<board>.crt/.key                          each board's agent (server)
    operator-<name>.crt/.key  viewer-<name>.crt/.key  people and scripts (client)
    coordinator-coordinator.signing.key/.pub        Ed25519 keys that sign checkpoints,
    agent-<board>.signing.key/.pub                  one pair per coordinator and agent

Each certificate carries its identity as its one SAN URI
(``spiffe://genode-migrate/<role>/<name>``); server certificates also carry
the identity's DNS form (what clients check), ``localhost``, 127.0.0.1 and
::1. Keys are written 0600, PEM, unencrypted (gRPC cannot use encrypted
ones). Running it again keeps what is there and valid and adds what is
missing, so a lab that grows a board gets that board's agent a certificate
from the same CA. Everything is made with the ``cryptography`` package.

This CA is for labs and tests: its key lies next to the certificates. A
deployment uses its own CA (docs/security.md).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import ConfigError
from .identity import TRUST_DOMAIN, Identity, Role
from .tls import TlsConfig

__all__ = [
    "DEFAULT_DAYS",
    "CA_DAYS",
    "LabCertificates",
    "init_lab",
    "create_ca",
    "issue",
    "load_ca",
    "write_private_key",
    "write_certificate",
    "is_server_role",
    "lab_identities",
]

#: Validity of the certificates of identities.
DEFAULT_DAYS = 365
#: Validity of the development CA.
CA_DAYS = 3650
#: Certificates start a little in the past: clocks of a lab's machines differ.
_BACKDATE = datetime.timedelta(minutes=5)
#: A certificate that ends sooner than this is issued again by init_lab.
_RENEW_BEFORE = datetime.timedelta(days=1)

PrivateKey = ec.EllipticCurvePrivateKey


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def is_server_role(role: Role) -> bool:
    return role in (Role.COORDINATOR, Role.AGENT)


# --- files ---------------------------------------------------------------------------------

def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomically, with ``mode`` from the start (a key is never readable by others)."""
    tmp = path.with_name(path.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_private_key(path: Path, key: PrivateKey | ed25519.Ed25519PrivateKey) -> None:
    _write(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()), 0o600)


def write_certificate(path: Path, certificate: x509.Certificate) -> None:
    _write(path, certificate.public_bytes(serialization.Encoding.PEM), 0o644)


# --- the CA and certificates ----------------------------------------------------------------

def create_ca(*, days: int = CA_DAYS, common_name: str = f"{TRUST_DOMAIN} development CA"
              ) -> tuple[PrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, TRUST_DOMAIN),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE).not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256()))
    return key, certificate


def issue(ca_key: PrivateKey, ca_certificate: x509.Certificate, identity: Identity | None, *,
          server: bool | None = None, days: int = DEFAULT_DAYS,
          not_before: datetime.datetime | None = None,
          not_after: datetime.datetime | None = None,
          uris: Iterable[str] | None = None, dns_names: Iterable[str] = (),
          common_name: str | None = None) -> tuple[PrivateKey, x509.Certificate]:
    """A new key and a certificate for ``identity``, signed by the CA.

    ``server`` (default: by role) adds the identity's DNS form, localhost,
    127.0.0.1 and ::1. ``uris`` replaces the identity's URI (tests make
    certificates with none or a foreign one); ``not_before``/``not_after``
    replace the validity that ``days`` gives.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    server = is_server_role(identity.role) if server is None and identity else bool(server)
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in (
        uris if uris is not None else [identity.uri] if identity else [])]
    names += [x509.DNSName(d) for d in dns_names]
    if server:
        if identity is not None:
            names.append(x509.DNSName(identity.dns_name))
        names += [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                  x509.IPAddress(ipaddress.ip_address("::1"))]
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, TRUST_DOMAIN)]
    if identity is not None:
        subject.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, identity.role.value))
    subject.append(x509.NameAttribute(NameOID.COMMON_NAME,
                                      common_name or (identity.name if identity else "nobody")))
    now = _now()
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH]
                                                  if server else [])
    builder = (
        x509.CertificateBuilder().subject_name(x509.Name(subject))
        .issuer_name(ca_certificate.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - _BACKDATE)
        .not_valid_after(not_after or now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_key.public_key()), critical=False))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def load_ca(directory: str | Path) -> tuple[PrivateKey, x509.Certificate]:
    """The CA key and certificate of a directory ``init_lab`` made."""
    directory = Path(directory)
    try:
        certificate = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    except FileNotFoundError as error:
        raise ConfigError(f"{error.filename} does not exist: {directory} holds no CA that "
                          "can issue certificates") from None
    except (ValueError, TypeError) as error:
        raise ConfigError(f"the CA in {directory} cannot be read: {error}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{directory / 'ca.key'} is not an ECDSA key")
    return key, certificate


# --- a lab's certificates -------------------------------------------------------------------

@dataclass
class LabCertificates:
    """What ``init_lab`` left in ``directory``: the identities, and which files it wrote."""

    directory: Path
    identities: list[Identity]
    written: list[str] = field(default_factory=list)

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    def cert(self, identity: Identity) -> Path:
        return self.directory / f"{identity.file_stem}.crt"

    def key(self, identity: Identity) -> Path:
        return self.directory / f"{identity.file_stem}.key"

    def signing_key(self, identity: Identity) -> Path:
        """The identity's Ed25519 checkpoint-signing key (coordinator and agents only)."""
        return self.directory / f"{identity.file_stem}.signing.key"

    def signing_pub(self, identity: Identity) -> Path:
        return self.directory / f"{identity.file_stem}.signing.pub"

    def tls(self, identity: Identity) -> TlsConfig:
        return TlsConfig.from_directory(self.directory, identity)


def _still_good(path: Path, key_path: Path, ca: x509.Certificate, identity: Identity) -> bool:
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
        certificate.verify_directly_issued_by(ca)
    except Exception:  # noqa: BLE001 - unreadable, foreign or forged: issue it anew
        return False
    return (key_path.exists() and certificate.not_valid_after_utc - _RENEW_BEFORE > _now()
            and identity.uri in _uris(certificate))


def _uris(certificate: x509.Certificate) -> list[str]:
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(sans.get_values_for_type(x509.UniformResourceIdentifier))


def lab_identities(boards: Iterable[str], operators: Iterable[str] = ("operator",),
                   viewers: Iterable[str] = ("viewer",), coordinator: str = "coordinator"
                   ) -> list[Identity]:
    return [Identity(Role.COORDINATOR, coordinator),
            *(Identity(Role.AGENT, b) for b in boards),
            *(Identity(Role.OPERATOR, o) for o in operators),
            *(Identity(Role.VIEWER, v) for v in viewers)]


def init_lab(directory: str | Path, *, boards: Iterable[str],
             operators: Iterable[str] = ("operator",), viewers: Iterable[str] = ("viewer",),
             days: int = DEFAULT_DAYS, coordinator: str = "coordinator") -> LabCertificates:
    """Creates (or completes) a lab's CA, certificates and signing keys in ``directory``.

    Raises ConfigError for a name that is not a valid identity name, or a
    directory whose ca.crt has no ca.key next to it.
    """
    directory = Path(directory)
    if days < 1:
        raise ConfigError("certificates must be valid for at least one day")
    identities = lab_identities(boards, operators, viewers, coordinator)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    done = LabCertificates(directory, identities)
    if (directory / "ca.crt").exists():
        ca_key, ca = load_ca(directory)
        if ca.not_valid_after_utc - _RENEW_BEFORE < _now():
            raise ConfigError(f"the CA in {directory} expired on "
                              f"{ca.not_valid_after_utc:%Y-%m-%d}; move the directory away "
                              "and run `migrate certs init` again")
    else:
        ca_key, ca = create_ca(days=max(CA_DAYS, days))
        write_private_key(directory / "ca.key", ca_key)
        write_certificate(directory / "ca.crt", ca)
        done.written += ["ca.key", "ca.crt"]
    for identity in identities:
        cert, key = done.cert(identity), done.key(identity)
        if not _still_good(cert, key, ca, identity):
            new_key, certificate = issue(ca_key, ca, identity, days=days)
            write_private_key(key, new_key)
            write_certificate(cert, certificate)
            done.written += [key.name, cert.name]
        if is_server_role(identity.role):
            done.written += _signing_pair(directory, identity)
    return done


def _signing_pair(directory: Path, identity: Identity) -> list[str]:
    """The identity's Ed25519 checkpoint-signing key pair, unless it has one."""
    private = directory / f"{identity.file_stem}.signing.key"
    public = directory / f"{identity.file_stem}.signing.pub"
    if private.exists() and public.exists():
        return []
    key = ed25519.Ed25519PrivateKey.generate()
    write_private_key(private, key)
    _write(public, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo),
           0o644)
    return [private.name, public.name]
