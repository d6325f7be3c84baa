"""TLS material and gRPC credentials, and where plaintext is allowed.

Every hop is mutual TLS: servers require a client certificate signed by their
CA (``server_credentials``), clients present theirs and check the server's
(``channel_credentials`` with ``target_name_options``, which names the
identity the server must prove). ``TlsConfig.load`` reads and checks the
files once, so that a wrong path, an expired certificate or a key that does
not belong to its certificate is a clear ConfigError at start-up rather than
a refused handshake later.

Certificates are ECDSA (P-256) or RSA: gRPC's TLS (BoringSSL) cannot sign a
handshake with an Ed25519 certificate key (NO_COMMON_SIGNATURE_ALGORITHMS).

Plaintext is served and spoken only on loopback (``check_plaintext_allowed``).
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519

from ..errors import ConfigError
from .identity import TRUST_DOMAIN, Identity, InvalidIdentity, parse_identity
from .keys import parse_private_key

__all__ = [
    "TlsConfig",
    "PlaintextRefused",
    "certificate_identity",
    "server_credentials",
    "channel_credentials",
    "target_name_options",
    "check_plaintext_allowed",
    "is_loopback_address",
    "tls_from_flags",
]


class PlaintextRefused(ConfigError):
    reason = "PLAINTEXT_REFUSED"


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"the TLS {what} {path} does not exist") from None
    except OSError as error:
        raise ConfigError(f"cannot read the TLS {what} {path}: {error.strerror}") from None
    if b"-----BEGIN" not in data:
        raise ConfigError(f"the TLS {what} {path} is not a PEM file")
    return data


def _certificates(path: Path, what: str) -> tuple[bytes, list[x509.Certificate]]:
    data = _read(path, what)
    try:
        return data, x509.load_pem_x509_certificates(data)
    except ValueError as error:
        raise ConfigError(f"the TLS {what} {path} holds no readable certificate: "
                          f"{error}") from None


class TlsConfig:
    """One party's TLS files: the CA bundle it trusts, its certificate (chain, leaf
    first) and private key. ``TlsConfig(ca, cert, key)`` reads and checks them
    (ConfigError naming the file and the fault) and keeps their PEM bytes
    (``ca_pem``, ``cert_pem``, ``key_pem``); ``identity`` is the leaf's, if it has one."""

    def __init__(self, ca: str | Path, cert: str | Path, key: str | Path, *,
                 now: datetime.datetime | None = None):
        self.ca, self.cert, self.key = Path(ca), Path(cert), Path(key)
        self.ca_pem, _ = _certificates(self.ca, "CA certificate")
        self.cert_pem, chain = _certificates(self.cert, "certificate")
        self.key_pem = _read(self.key, "key")
        private = parse_private_key(self.key_pem, f"the TLS key {key}",
                                    "gRPC needs it unencrypted")
        if isinstance(private, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
            raise ConfigError(f"the TLS key {key} is an EdDSA key, which gRPC's TLS cannot use; "
                              "use ECDSA P-256 (as `migrate certs init` does) or RSA")
        leaf = chain[0]
        public = serialization.PublicFormat.SubjectPublicKeyInfo
        if private.public_key().public_bytes(serialization.Encoding.DER, public) != \
                leaf.public_key().public_bytes(serialization.Encoding.DER, public):
            raise ConfigError(f"the TLS key {key} does not belong to the certificate {cert}")
        now = now or datetime.datetime.now(datetime.timezone.utc)
        if leaf.not_valid_after_utc < now:
            raise ConfigError(f"the TLS certificate {cert} expired on "
                              f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
        if leaf.not_valid_before_utc > now:
            raise ConfigError(f"the TLS certificate {cert} is not valid before "
                              f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
        self.identity: Identity | None = certificate_identity(leaf)
        self.not_after: datetime.datetime = leaf.not_valid_after_utc

    def __repr__(self) -> str:
        return f"<TlsConfig {self.identity or 'no identity'} {self.cert}>"

    @classmethod
    def load(cls, ca: str | Path, cert: str | Path, key: str | Path, *,
             now: datetime.datetime | None = None) -> TlsConfig:
        """The same as ``TlsConfig(ca, cert, key)``."""
        return cls(ca, cert, key, now=now)

    @classmethod
    def from_directory(cls, directory: str | Path, identity: Identity) -> TlsConfig:
        """``ca.crt`` and ``<role>-<name>.crt/.key`` in a directory ``migrate certs init`` made."""
        directory = Path(directory)
        return cls.load(directory / "ca.crt", directory / f"{identity.file_stem}.crt",
                        directory / f"{identity.file_stem}.key")



def certificate_identity(certificate: x509.Certificate) -> Identity | None:
    """The genode-migrate identity in a certificate's SAN URIs, if exactly one is valid."""
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    found = set()
    for uri in sans.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(f"spiffe://{TRUST_DOMAIN}/"):
            try:
                found.add(parse_identity(uri))
            except InvalidIdentity:
                continue
    return found.pop() if len(found) == 1 else None


def server_credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    """A server that only talks to clients with a certificate from its CA."""
    return grpc.ssl_server_credentials([(tls.key_pem, tls.cert_pem)],
                                       root_certificates=tls.ca_pem, require_client_auth=True)


def channel_credentials(tls: TlsConfig) -> grpc.ChannelCredentials:
    """A client that presents its certificate and trusts servers signed by its CA."""
    return grpc.ssl_channel_credentials(root_certificates=tls.ca_pem,
                                        private_key=tls.key_pem, certificate_chain=tls.cert_pem)


def target_name_options(server: Identity) -> list[tuple[str, Any]]:
    """Channel options that make the handshake check the server's identity (its DNS
    form, see migrate.security.identity) instead of the address dialled."""
    return [("grpc.ssl_target_name_override", server.dns_name)]


# --- plaintext ------------------------------------------------------------------------------

def _host(address: str) -> str | None:
    """The host of ``host:port`` (``[v6]:port``, ``ipv4:``/``dns:///`` prefixes too);
    None for a Unix socket."""
    if address.startswith(("unix:", "unix-abstract:")):
        return None
    for prefix in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        address = address.removeprefix(prefix)
    host = address.rpartition(":")[0] if address.count(":") == 1 or address.startswith("[") \
        else address
    return host.strip("[]")


def is_loopback_address(address: str) -> bool:
    host = _host(address)
    if host is None:
        return True
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_plaintext_allowed(address: str, what: str = "plaintext gRPC") -> None:
    """PlaintextRefused unless ``address`` (host:port) is on loopback."""
    if not is_loopback_address(address):
        raise PlaintextRefused(f"refusing {what} on {address}: plaintext is allowed on "
                               "loopback only (127.0.0.1, ::1, localhost); configure TLS "
                               "(docs/security.md)")


def tls_from_flags(ca: str | None, cert: str | None, key: str | None, *,
                   plaintext: bool) -> TlsConfig | None:
    """A server's command-line choice: all three TLS files, or plaintext when asked for
    (``--plaintext``), never both and never neither."""
    given = {name: value for name, value in (("--tls-ca", ca), ("--tls-cert", cert),
                                             ("--tls-key", key)) if value}
    if plaintext:
        if given:
            raise ConfigError(f"--plaintext and {', '.join(given)}: choose one")
        return None
    if len(given) < 3:
        missing = [n for n in ("--tls-ca", "--tls-cert", "--tls-key") if n not in given]
        raise ConfigError(f"missing {', '.join(missing)}: mutual TLS needs the CA, a "
                          "certificate and its key (`migrate certs init` makes them), or "
                          "--plaintext to serve on loopback without TLS")
    assert ca and cert and key
    return TlsConfig.load(ca, cert, key)
