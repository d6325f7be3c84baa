"""The board protocol's version (docs/board-protocol.md), shared by both sides.

Its own module so that an agent can name it without importing the board side
(genode_cr.service imports the emulator).
"""

from __future__ import annotations

__all__ = ["PROTOCOL_VERSION"]

#: The highest board protocol version this code speaks.
PROTOCOL_VERSION = 1
