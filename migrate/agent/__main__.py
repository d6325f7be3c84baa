"""python -m migrate.agent --board-url URL --listen HOST:PORT [--baud B] [--session-idle-timeout S]"""

from __future__ import annotations

import argparse
import logging
import sys

from .server import run


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
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        run(args.board_url, args.listen, baud=args.baud,
            session_idle_timeout=args.session_idle_timeout)
    except OSError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
