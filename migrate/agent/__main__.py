"""python -m migrate.agent --board-url URL --listen HOST:PORT
    (--tls-ca CA --tls-cert CERT --tls-key KEY [--coordinator-identity URI] | --plaintext)
    [--signing-key KEY] [--trusted-signers DIR | --trusted-signer PUB ...] [--allow-unsigned]
    [--baud B] [--session-idle-timeout S]"""

from __future__ import annotations

import argparse
import logging
import sys

from ..errors import MigrateError
from ..security.identity import COORDINATOR, InvalidIdentity, parse_identity
from ..security.tls import tls_from_flags
from .server import run, signing_from_flags


def add_security_arguments(parser: argparse.ArgumentParser) -> None:
    tls = parser.add_argument_group("security (mutual TLS, or plaintext on loopback)")
    tls.add_argument("--tls-ca", metavar="FILE", help="the CA that signs the coordinator's "
                     "certificate (PEM)")
    tls.add_argument("--tls-cert", metavar="FILE", help="this agent's certificate (PEM)")
    tls.add_argument("--tls-key", metavar="FILE", help="its private key (PEM, unencrypted)")
    tls.add_argument("--coordinator-identity", metavar="URI", default=COORDINATOR.uri,
                     help="the only coordinator whose calls are accepted "
                          "[default: %(default)s]")
    tls.add_argument("--plaintext", action="store_true",
                     help="no TLS: serve on a loopback address only, every local caller "
                          "counts as the coordinator")
    signing = parser.add_argument_group("signed checkpoints")
    signing.add_argument("--signing-key", metavar="FILE",
                         help="sign the checkpoints this agent streams with this Ed25519 key "
                              "(PKCS#8 PEM, <role>-<name>.signing.key)")
    signing.add_argument("--trusted-signers", metavar="DIR", action="append", dest="trusted",
                         help="stage checkpoints signed by the keys of every *.signing.pub "
                              "in DIR (repeatable)")
    signing.add_argument("--trusted-signer", metavar="FILE", action="append", dest="trusted",
                         help="stage checkpoints signed by this public key (repeatable)")
    signing.add_argument("--allow-unsigned", action="store_true",
                         help="with --plaintext only: stage unsigned checkpoints too")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m migrate.agent")
    parser.add_argument("--board-url", required=True,
                        help="the board's UART as a pyserial URL, e.g. socket://127.0.0.1:4555")
    parser.add_argument("--listen", default="127.0.0.1:0",
                        help="HOST:PORT to serve gRPC on (port 0 picks one)")
    parser.add_argument("--baud", type=int, default=None,
                        help="the serial device's baud rate (ignored by socket:// URLs)")
    parser.add_argument("--session-idle-timeout", type=float, default=300.0, metavar="S",
                        help="abort restore sessions unused for this many seconds")
    parser.add_argument("--log-level", default="INFO")
    add_security_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        tls = tls_from_flags(args.tls_ca, args.tls_cert, args.tls_key, plaintext=args.plaintext)
        coordinator = parse_identity(args.coordinator_identity)
        signer, trusted = signing_from_flags(args.signing_key, args.trusted,
                                             args.allow_unsigned, tls)
        run(args.board_url, args.listen, baud=args.baud,
            session_idle_timeout=args.session_idle_timeout, tls=tls, coordinator=coordinator,
            signer=signer, trusted=trusted, allow_unsigned=args.allow_unsigned)
    except InvalidIdentity as error:
        print(f"Error: --coordinator-identity: {error}", file=sys.stderr)
        return 2
    except (OSError, MigrateError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
