import re

import pytest

from genode_cr.checkpoint import resolve_page_lists
from genode_cr.emu import Board, default_rom_dir

COUNT = re.compile(r"^count (\d+) elapsed_ms (\d+)$")
STEP = re.compile(r"^step (\d+) size_kib (\d+) digest ([0-9a-f]{8})$")


@pytest.fixture(scope="session")
def rom_dir():
    directory = default_rom_dir()
    if not all((directory / rom).is_file() for rom in ("counter", "kvstore", "ticker")):
        pytest.fail(f"component ROMs missing in {directory}: run `make roms` (make test does)")
    return directory


@pytest.fixture
def make_board(rom_dir):
    def make(name, **kwargs):
        return Board(name, rom_dir=rom_dir, **kwargs)
    return make


def counts(board, name="counter"):
    """(count, elapsed_ms, board time in µs) for each count line."""
    out = []
    for entry in board.log_entries(name):
        m = COUNT.match(entry.text)
        if m:
            out.append((int(m[1]), int(m[2]), entry.time_us))
    return out


def steps(board, name="kvstore"):
    """{step: (size_kib, digest)} of the kvstore's log."""
    out = {}
    for text in board.log(name):
        m = STEP.match(text)
        if m:
            out[int(m[1])] = (int(m[2]), m[3])
    return out


def page_lists(*chain):
    """The newest checkpoint's whole page lists (badge -> digests), resolved along
    the chain given in order, the full checkpoint first."""
    return resolve_page_lists(chain)[-1]


def errors_in(board, name):
    return [line for line in board.log(name) if "Error" in line or "[core]" in line]
