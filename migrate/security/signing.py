"""Who produced a checkpoint: Ed25519 signatures over a canonical statement.

A checkpoint's root digest proves that its manifest and pages belong together
(docs/checkpoint-format.md §4), not who made them: anyone who can talk to an
agent can compute a valid root for a checkpoint of their own. So the source
agent signs each checkpoint it streams, the coordinator signs each one it
stores, and an agent verifies a signature from a signer it trusts before any
part of a checkpoint reaches its board (docs/security.md, "Signed checkpoints").

What is signed is a ``CheckpointStatement`` encoded with the signer's identity::

    b"genode-migrate checkpoint signature v1\\x00"
    || field(signer URI) || field(component) || field(checkpoint id)
    || field(parent id) || field(root digest)          field(x) = u32le(len(x)) || x

The root digest binds the manifest and the set of carried pages; the other
fields are in the manifest too, and are repeated so that a signature can be
checked (and its refusal explained) without trusting anything else, and
cannot be moved to another checkpoint, another component or another signer.

Keys are the files ``migrate certs init`` writes: ``<role>-<name>.signing.key``
(PKCS#8 PEM, private) and ``<role>-<name>.signing.pub`` (SubjectPublicKeyInfo
PEM); the file stem names the identity a public key speaks for.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ..errors import (CheckpointSignatureInvalid, CheckpointSignerUnknown, CheckpointUnsigned,
                      ConfigError)
from .identity import Identity, InvalidIdentity, parse_identity
from .keys import parse_private_key

__all__ = [
    "ALGORITHM",
    "CheckpointStatement",
    "DOMAIN",
    "PRIVATE_SUFFIX",
    "PUBLIC_SUFFIX",
    "Signature",
    "Signer",
    "TrustedSigners",
    "identity_of_key_file",
    "load_private_key",
    "load_public_key",
]

ALGORITHM = "ed25519"
#: Domain separation: these bytes never start anything else we hash or sign.
DOMAIN = b"genode-migrate checkpoint signature v1\x00"
PRIVATE_SUFFIX = ".signing.key"
PUBLIC_SUFFIX = ".signing.pub"
SIGNATURE_SIZE = 64
#: Bounds on what a peer may hand us as a signature.
MAX_SIGNER_LENGTH = 200
MAX_FIELD_LENGTH = 1024


def _field(value: bytes) -> bytes:
    return struct.pack("<I", len(value)) + value


@dataclass(frozen=True)
class CheckpointStatement:
    """What a signature vouches for: this checkpoint of this component, with this root."""
    component: str
    checkpoint_id: str
    parent_id: str
    root_digest: bytes

    @classmethod
    def of(cls, manifest, root_digest: bytes) -> CheckpointStatement:  # type: ignore[no-untyped-def]
        """The statement for a ``genode_cr.v1.Manifest`` and its root digest."""
        return cls(manifest.component, manifest.id, manifest.parent_id, bytes(root_digest))

    def encode(self, signer: Identity) -> bytes:
        """The canonical bytes ``signer`` signs."""
        parts = [signer.uri.encode(), self.component.encode(), self.checkpoint_id.encode(),
                 self.parent_id.encode(), self.root_digest]
        if any(len(p) > MAX_FIELD_LENGTH for p in parts):
            raise CheckpointSignatureInvalid("a checkpoint statement field is too long to sign")
        return DOMAIN + b"".join(_field(p) for p in parts)

    def __str__(self) -> str:
        return f"checkpoint {self.checkpoint_id} of {self.component}"


@dataclass(frozen=True)
class Signature:
    signer: Identity
    algorithm: str
    value: bytes

    @classmethod
    def parse(cls, signer: str, algorithm: str, value: bytes) -> Signature:
        """A signature as a peer sent it (``CheckpointSignature``): its signer must be an
        identity URI. An empty signer is no signature at all (CheckpointUnsigned)."""
        if not signer and not value:
            raise CheckpointUnsigned("the checkpoint carries no signature")
        if len(signer) > MAX_SIGNER_LENGTH:
            raise CheckpointSignatureInvalid("a checkpoint signature's signer is too long")
        try:
            identity = parse_identity(signer)
        except InvalidIdentity as error:
            raise CheckpointSignerUnknown(f"a checkpoint signature's signer {signer[:80]!r} is "
                                          f"not an identity: {error}") from None
        return cls(identity, algorithm, bytes(value))


def load_private_key(path: str | Path) -> ed25519.Ed25519PrivateKey:
    """An Ed25519 private key from a PKCS#8 PEM file; ConfigError naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read the signing key {path}: {error.strerror}") from None
    key = parse_private_key(data, f"the signing key {path}", "it must not be")
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"the signing key {path} is not an Ed25519 key")
    return key


def load_public_key(path: str | Path) -> ed25519.Ed25519PublicKey:
    """An Ed25519 public key from a SubjectPublicKeyInfo PEM file; ConfigError naming it."""
    path = Path(path)
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as error:
        raise ConfigError(f"cannot read the signing public key {path}: "
                          f"{error.strerror}") from None
    except (ValueError, UnsupportedAlgorithm) as error:
        raise ConfigError(f"the signing public key {path} is not a readable public key: "
                          f"{error}") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ConfigError(f"the signing public key {path} is not an Ed25519 key")
    return key


def identity_of_key_file(path: str | Path) -> Identity:
    """The identity a key file speaks for, from its name: ``<role>-<name>.signing.key``
    or ``.signing.pub``."""
    path = Path(path)
    stem = path.name
    for suffix in (PRIVATE_SUFFIX, PUBLIC_SUFFIX):
        if stem.endswith(suffix):
            stem = stem.removesuffix(suffix)
            break
    else:
        raise ConfigError(f"{path}: a signing key file is named <role>-<name>{PRIVATE_SUFFIX} "
                          f"or <role>-<name>{PUBLIC_SUFFIX}")
    try:
        return parse_identity(stem)
    except InvalidIdentity as error:
        raise ConfigError(f"{path}: its name does not name an identity: {error}") from None


def _raw(public: ed25519.Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class Signer:
    """Signs statements as ``identity`` with ``key``."""

    def __init__(self, identity: Identity, key: ed25519.Ed25519PrivateKey):
        self.identity = identity
        self.key = key

    @classmethod
    def from_file(cls, path: str | Path, identity: Identity | None = None) -> Signer:
        """The key in ``path``, signing as ``identity`` (default: the file's name's)."""
        key = load_private_key(path)
        return cls(identity or identity_of_key_file(path), key)

    @property
    def public_key(self) -> ed25519.Ed25519PublicKey:
        return self.key.public_key()

    def sign(self, statement: CheckpointStatement) -> Signature:
        return Signature(self.identity, ALGORITHM, self.key.sign(statement.encode(self.identity)))

    def trusts_itself(self) -> TrustedSigners:
        """Verifies what this signer signed (the coordinator checking its own store)."""
        return TrustedSigners({self.identity: self.public_key})

    def __repr__(self) -> str:
        return f"<Signer {self.identity}>"


class TrustedSigners:
    """The signers whose checkpoints are accepted: identity -> Ed25519 public key."""

    def __init__(self, keys: Mapping[Identity, ed25519.Ed25519PublicKey] | None = None):
        self.keys: dict[Identity, ed25519.Ed25519PublicKey] = dict(keys or {})

    @classmethod
    def load(cls, paths: Iterable[str | Path]) -> TrustedSigners:
        """From ``.signing.pub`` files and directories of them (every
        ``*.signing.pub`` inside; the file stem names the identity). A directory
        without any, or a key named for two identities' worth, is a ConfigError."""
        keys: dict[Identity, ed25519.Ed25519PublicKey] = {}
        for entry in paths:
            entry = Path(entry)
            if entry.is_dir():
                files = sorted(entry.glob(f"*{PUBLIC_SUFFIX}"))
                if not files:
                    raise ConfigError(f"the trusted signers directory {entry} holds no "
                                      f"*{PUBLIC_SUFFIX} file")
            else:
                files = [entry]
            for file in files:
                identity = identity_of_key_file(file)
                key = load_public_key(file)
                if identity in keys and _raw(keys[identity]) != _raw(key):
                    raise ConfigError(f"{file}: another public key of {identity} is trusted "
                                      "already")
                keys[identity] = key
        return cls(keys)

    def __len__(self) -> int:
        return len(self.keys)

    def __contains__(self, identity: object) -> bool:
        return identity in self.keys

    def __repr__(self) -> str:
        return f"<TrustedSigners {', '.join(sorted(i.uri for i in self.keys))}>"

    def verify(self, statement: CheckpointStatement, signature: Signature | None) -> Identity:
        """Returns the signer if ``signature`` is a valid signature of ``statement`` by a
        trusted signer; raises CheckpointUnsigned, CheckpointSignerUnknown or
        CheckpointSignatureInvalid otherwise."""
        if signature is None:
            raise CheckpointUnsigned(f"{statement} is not signed")
        key = self.keys.get(signature.signer)
        if key is None:
            trusted = ", ".join(sorted(i.uri for i in self.keys)) or "nobody"
            raise CheckpointSignerUnknown(
                f"{statement} is signed by {signature.signer}, which is not a trusted signer "
                f"(trusted: {trusted})", metadata={"signer": signature.signer.uri})
        if signature.algorithm != ALGORITHM:
            raise CheckpointSignatureInvalid(
                f"{statement}: signature algorithm {signature.algorithm[:40]!r} is not "
                f"{ALGORITHM!r}", metadata={"signer": signature.signer.uri})
        if len(signature.value) != SIGNATURE_SIZE:
            raise CheckpointSignatureInvalid(
                f"{statement}: an {ALGORITHM} signature is {SIGNATURE_SIZE} bytes, not "
                f"{len(signature.value)}", metadata={"signer": signature.signer.uri})
        try:
            key.verify(signature.value, statement.encode(signature.signer))
        except InvalidSignature:
            raise CheckpointSignatureInvalid(
                f"{statement}: the signature of {signature.signer} does not match it (the "
                "checkpoint, its root digest or the signature was altered, or the signature "
                "is another checkpoint's)", metadata={"signer": signature.signer.uri}) from None
        return signature.signer
