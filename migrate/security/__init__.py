"""Who may talk to whom: mutual TLS on every gRPC hop, identities, roles.

    identity.py  Role, Identity (spiffe://genode-migrate/<role>/<name>), peer_identity
    access.py    AccessPolicy: one table per servicer, method -> roles (rpc.map_errors asks it)
    tls.py       TlsConfig (ca, cert, key), gRPC credentials, plaintext only on loopback
    pki.py       a development CA and a lab's certificates (`migrate certs init`)
    signing.py   Ed25519 checkpoint signatures: Signer, TrustedSigners, CheckpointStatement

docs/security.md has the threat model and how to deploy with real certificates.
"""

from .access import ANY_PEER, OPERATORS, READERS, AccessPolicy
from .identity import (COORDINATOR, LOCAL_OPERATOR, TRUST_DOMAIN, Identity, InvalidIdentity,
                       Role, current_caller, parse_identity, peer_identity)
from .tls import (PlaintextRefused, TlsConfig, channel_credentials, check_plaintext_allowed,
                  server_credentials, target_name_options)

__all__ = [
    "ANY_PEER",
    "AccessPolicy",
    "COORDINATOR",
    "Identity",
    "InvalidIdentity",
    "LOCAL_OPERATOR",
    "OPERATORS",
    "PlaintextRefused",
    "READERS",
    "Role",
    "TRUST_DOMAIN",
    "TlsConfig",
    "channel_credentials",
    "check_plaintext_allowed",
    "current_caller",
    "parse_identity",
    "peer_identity",
    "server_credentials",
    "target_name_options",
]
