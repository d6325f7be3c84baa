"""Checkpoint signatures: keys from pki.init_lab, statements, trusted signers."""

from __future__ import annotations

import os

import pytest

from migrate import errors
from migrate.config import load_coordinator_config
from migrate.security import COORDINATOR, Identity, Role
from migrate.security.pki import init_lab
from migrate.security.signing import (DOMAIN, CheckpointStatement, Signature, Signer,
                                      TrustedSigners, identity_of_key_file)

AGENT_A = Identity(Role.AGENT, "boardA")
ROOT = bytes(range(32))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    return init_lab(tmp_path_factory.mktemp("lab"), boards=("boardA", "board-b"))


def statement(**changes) -> CheckpointStatement:
    fields = dict(component="counter", checkpoint_id="a" * 32, parent_id="", root_digest=ROOT)
    fields.update(changes)
    return CheckpointStatement(**fields)


def test_sign_and_verify_with_the_lab_keys(lab):
    signer = Signer.from_file(lab.signing_key(AGENT_A))
    assert signer.identity == AGENT_A
    trusted = TrustedSigners.load([lab.directory])
    assert {AGENT_A, Identity(Role.AGENT, "board-b"), COORDINATOR} <= set(trusted.keys)
    signature = signer.sign(statement())
    assert signature.algorithm == "ed25519" and len(signature.value) == 64
    assert trusted.verify(statement(), signature) == AGENT_A
    # One public key file alone is enough.
    alone = TrustedSigners.load([lab.signing_pub(AGENT_A)])
    assert alone.verify(statement(), signature) == AGENT_A


@pytest.mark.parametrize("changes", [
    {"component": "kvstore"}, {"checkpoint_id": "b" * 32}, {"parent_id": "a" * 32},
    {"root_digest": bytes(31) + b"\x01"},
], ids=["component", "id", "parent", "root"])
def test_a_signature_does_not_move_to_another_checkpoint(lab, changes):
    signature = Signer.from_file(lab.signing_key(AGENT_A)).sign(statement())
    with pytest.raises(errors.CheckpointSignatureInvalid):
        TrustedSigners.load([lab.directory]).verify(statement(**changes), signature)


def test_refusals_name_their_reason(lab, tmp_path):
    trusted = TrustedSigners.load([lab.directory])
    signature = Signer.from_file(lab.signing_key(AGENT_A)).sign(statement())
    with pytest.raises(errors.CheckpointUnsigned):
        trusted.verify(statement(), None)
    # Attributed to another identity: the statement names the signer, so it fails.
    moved = Signature(COORDINATOR, signature.algorithm, signature.value)
    with pytest.raises(errors.CheckpointSignatureInvalid):
        trusted.verify(statement(), moved)
    stranger = Signature(Identity(Role.AGENT, "boardZ"), "ed25519", signature.value)
    with pytest.raises(errors.CheckpointSignerUnknown) as unknown:
        trusted.verify(statement(), stranger)
    assert unknown.value.status == "FAILED_PRECONDITION"
    with pytest.raises(errors.CheckpointSignatureInvalid):
        trusted.verify(statement(), Signature(AGENT_A, "rsa", signature.value))
    with pytest.raises(errors.CheckpointSignatureInvalid):
        trusted.verify(statement(), Signature(AGENT_A, "ed25519", signature.value[:-1]))
    flipped = bytearray(signature.value)
    flipped[0] ^= 1
    with pytest.raises(errors.CheckpointSignatureInvalid):
        trusted.verify(statement(), Signature(AGENT_A, "ed25519", bytes(flipped)))
    with pytest.raises(errors.CheckpointSignerUnknown):
        Signature.parse("not an identity", "ed25519", signature.value)
    with pytest.raises(errors.CheckpointUnsigned):
        Signature.parse("", "", b"")
    # The reasons survive a trip over the wire as their own classes.
    rebuilt = errors.error_from_reason("CHECKPOINT_SIGNER_UNKNOWN", "x", "FAILED_PRECONDITION")
    assert isinstance(rebuilt, errors.CheckpointSignerUnknown)


def test_the_statement_is_canonical_and_domain_separated():
    encoded = statement().encode(AGENT_A)
    assert encoded.startswith(DOMAIN)
    # Lengths prefix each field: moving a character between fields changes the bytes.
    a = statement(component="ab", checkpoint_id="c").encode(AGENT_A)
    b = statement(component="a", checkpoint_id="bc").encode(AGENT_A)
    assert a != b


def test_bad_key_files_are_config_errors(lab, tmp_path):
    with pytest.raises(errors.ConfigError, match="not an Ed25519"):
        # A TLS key (ECDSA) is no signing key.
        Signer.from_file(lab.key(AGENT_A), AGENT_A)
    with pytest.raises(errors.ConfigError, match="cannot read"):
        Signer.from_file(tmp_path / "agent-x.signing.key")
    with pytest.raises(errors.ConfigError, match="named"):
        identity_of_key_file(tmp_path / "whatever.pem")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(errors.ConfigError, match="holds no"):
        TrustedSigners.load([empty])
    garbage = tmp_path / "agent-boardA.signing.pub"
    garbage.write_text("not a key")
    with pytest.raises(errors.ConfigError, match="not a readable"):
        TrustedSigners.load([garbage])
    # Two different keys for one identity: refused, not silently one of them.
    other = init_lab(tmp_path / "other", boards=("boardA",))
    with pytest.raises(errors.ConfigError, match="another public key"):
        TrustedSigners.load([lab.signing_pub(AGENT_A), other.signing_pub(AGENT_A)])


def test_coordinator_signing_table(lab, tmp_path):
    relative = os.path.relpath(lab.directory, tmp_path)
    path = tmp_path / "coordinator.toml"
    path.write_text(f"""
[coordinator]
listen = "127.0.0.1:0"
[signing]
key = "{relative}/coordinator-coordinator.signing.key"
trusted = "{relative}"
[[boards]]
name = "boardA"
agent = "127.0.0.1:1"
""")
    config = load_coordinator_config(path)
    assert config.signer is not None and config.signer.identity == COORDINATOR
    assert AGENT_A in config.trusted_signers
    path.write_text('[signing]\nkey = "nope.signing.key"\n')
    with pytest.raises(errors.ConfigError, match=r"\[signing\]"):
        load_coordinator_config(path)
    path.write_text('[signing]\ntrusted = 3\n')
    with pytest.raises(errors.ConfigError, match="trusted"):
        load_coordinator_config(path)


def test_agent_signing_flags(lab):
    from migrate.agent.server import signing_from_flags
    tls = lab.tls(AGENT_A)
    with pytest.raises(errors.ConfigError, match="--allow-unsigned"):
        signing_from_flags(None, None, True, tls)
    signer, trusted = signing_from_flags(str(lab.signing_key(AGENT_A)), [str(lab.directory)],
                                         False, tls)
    assert signer.identity == AGENT_A and AGENT_A in trusted
    # In plaintext the key file's name says who signs.
    signer, trusted = signing_from_flags(str(lab.signing_key(COORDINATOR)), None, True, None)
    assert signer.identity == COORDINATOR and trusted is None
