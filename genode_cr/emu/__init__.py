"""The emulated Genode/Fiasco.OC board: real ARM32 components under Unicorn,
core services behind capabilities, and the checkpoint/restore component."""

from .board import Board, LogEntry, default_rom_dir
from .cr import ComponentInfo, CrComponent
from .restore import RESTORE_STEPS, RestoreReport, Translation

__all__ = [
    "Board",
    "ComponentInfo",
    "CrComponent",
    "LogEntry",
    "RESTORE_STEPS",
    "RestoreReport",
    "Translation",
    "default_rom_dir",
]
