"""python -m migrate.coordinator --config FILE"""

from __future__ import annotations

import argparse
import logging
import sys

from ..config import load_coordinator_config
from ..errors import MigrateError
from .server import run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m migrate.coordinator")
    parser.add_argument("--config", required=True, help="coordinator TOML file")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = load_coordinator_config(args.config)
        run(config, ready=lambda address: print(f"coordinator listening on {address}",
                                                flush=True))
    except MigrateError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    except OSError as error:           # the listen address is taken
        print(f"Error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
