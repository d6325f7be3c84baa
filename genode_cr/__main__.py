"""``python -m genode_cr`` is the ``genode-cr`` command."""

from .cli import main

main()
