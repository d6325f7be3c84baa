"""Byte counts as people type them, for both command lines."""

from __future__ import annotations

import re
from typing import Any

import click

__all__ = ["SIZE", "Size"]


class Size(click.ParamType):
    """A byte count: 4096, 64K, 16M, 1G (binary multiples; KiB/MiB/GiB also accepted)."""

    name = "BYTES"
    _UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        m = re.fullmatch(r"\s*(\d+)\s*([kmg]?)(?:i?b)?\s*", str(value), re.IGNORECASE)
        if not m:
            self.fail(f"{value!r} is not a size (examples: 65536, 64K, 16M, 1G)", param, ctx)
        return int(m[1]) * self._UNITS[m[2].lower()]


SIZE = Size()
