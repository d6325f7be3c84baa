"""The board's kernel/core ABI, read from the C header the components build with.

One source of truth: ``c/include/genode/abi.h``. Every ``#define NAME value``
there becomes an attribute of this module.
"""

from __future__ import annotations

import re
from pathlib import Path

HEADER = Path(__file__).with_name("c") / "include" / "genode" / "abi.h"

_DEFINE = re.compile(r"^#define\s+([A-Z][A-Z0-9_]*)\s+(0x[0-9a-fA-F]+|\d+)\b", re.MULTILINE)


def _read_constants(text: str) -> dict[str, int]:
    return {name: int(value, 0) for name, value in _DEFINE.findall(text)}


CONSTANTS = _read_constants(HEADER.read_text())
globals().update(CONSTANTS)


def kcap(index: int) -> int:
    """The capability selector of a slot index, as Fiasco.OC encodes it."""
    return index << CONSTANTS["CAP_SHIFT"]


def cap_index(selector: int) -> int:
    return selector >> CONSTANTS["CAP_SHIFT"]


def __getattr__(name: str) -> int:  # keeps type checkers quiet about globals()
    try:
        return CONSTANTS[name]
    except KeyError:
        raise AttributeError(name) from None
