"""Quotas: exceeding one is an error the component sees, not a crash."""

import re

from .conftest import steps


def test_ram_quota_exhaustion_is_seen_by_the_component(make_board):
    board = make_board("boardA")
    board.cr.start("kvstore", ram_quota=1 << 20)
    board.cr.start("counter")
    board.run(2.0)
    full = [line for line in board.log("kvstore") if "table full" in line]
    assert full and re.search(r"\(err 3\)", full[0]), board.log("kvstore")
    info = board.cr.info("kvstore")
    assert info.state == "running" and info.ram_used <= info.ram_quota
    last = max(steps(board))
    board.run(0.5)
    assert max(steps(board)) > last, "the component stopped after hitting its quota"
    assert board.cr.info("counter").state == "running"


def test_cap_quota_exhaustion_is_seen_by_the_component(make_board):
    board = make_board("boardA")
    board.cr.start("ticker", cap_quota=20)
    board.run(1.0)
    assert any("Error: ticker" in line for line in board.log("ticker")), board.log("ticker")
    info = board.cr.info("ticker")
    assert info.cap_used <= info.cap_quota
    assert info.state == "running"


def test_quota_is_reserved_and_returned(make_board):
    board = make_board("boardA", ram=64 << 20)
    free = board.free_ram, board.free_caps
    board.cr.start("counter", ram_quota=8 << 20, cap_quota=50)
    assert (board.free_ram, board.free_caps) == (free[0] - (8 << 20), free[1] - 50)
    board.cr.kill("counter")
    assert (board.free_ram, board.free_caps) == free
