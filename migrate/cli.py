"""The `migrate` command line."""

from __future__ import annotations

import click

from migrate import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="migrate")
def main() -> None:
    """Move running, checkpointed Genode components between boards."""


if __name__ == "__main__":
    main()
