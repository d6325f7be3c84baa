"""Reading a private key from PEM, with errors that name the file: the TLS key
and the signing key are refused for the same reasons."""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from ..errors import ConfigError

__all__ = ["parse_private_key"]


def parse_private_key(data: bytes, what: str, why_unencrypted: str):  # type: ignore[no-untyped-def]
    """The key in ``data``; ConfigError naming ``what`` (e.g. "the TLS key /etc/x.key")
    for an encrypted or unreadable one."""
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ConfigError(f"{what} is encrypted; {why_unencrypted} "
                          "(protect it with file permissions)") from None
    except (ValueError, UnsupportedAlgorithm) as error:
        raise ConfigError(f"{what} is not a readable private key: {error}") from None
