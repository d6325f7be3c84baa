"""kvstore left running: no configuration the project ships or benchmarks
with makes it log an error, however long it runs.

It used to log `Error: kvstore: attach failed (9)` at step 41: its table's
region map held 40 chunks while its RAM quota paid for more. The table now
stops at `table_kib`, the region map is exactly that large, and `table_kib`
is limited to what the capability map holds with room to spare for the
runtime, which keeps receiving capabilities after start-up (each timer
check does).
"""

import re

import pytest

MIB = 1 << 20
STEP = re.compile(r"^(?:check )?step (\d+) ")

#: kvstore's configurations elsewhere in the project, with the RAM quota they
#: run with (None: the CR component's default).
BENCH_BOARD = (8 * MIB + 128 * 1024, "")                    # bench/board.py
MIGRATION = ("table_kib={}\nfill=random\nhot_pages=16\nwords_per_page=4\nperiod_ms=20\n"
             "log_every=50\n")                               # bench/migration.py
HOT_MOVES = "table_kib=1024\nfill=random\nhot_pages=16\nperiod_ms=20\n"  # tests/coordinator


def last_step(board, name="kvstore"):
    steps = [int(m[1]) for m in map(STEP.match, board.log(name)) if m]
    return max(steps, default=0)


def trouble(board, name="kvstore"):
    return [line for line in board.log(name)
            if "Error" in line or "failed" in line or "[core]" in line]


def run_long(board, steps, timeout):
    board.run_until(lambda: last_step(board) >= steps or trouble(board), timeout=timeout)
    assert not trouble(board), trouble(board)
    assert board.cr.info("kvstore").state == "running"


@pytest.mark.parametrize("quota, config, steps", [
    pytest.param(None, "", 60, id="default"),
    pytest.param(*BENCH_BOARD, 60, id="bench-board"),
    pytest.param(None, HOT_MOVES, 400, id="coordinator-hot"),
    pytest.param(None, MIGRATION.format(2048), 400, id="bench-migration-quick"),
    pytest.param(None, MIGRATION.format(8192), 400, id="bench-migration"),
])
def test_a_long_run_logs_no_error(make_board, quota, config, steps):
    board = make_board("boardA")
    kwargs = {"ram_quota": quota} if quota else {}
    board.cr.start("kvstore", config=config, **kwargs)
    run_long(board, steps, timeout=60)
    assert any(line.startswith("kvstore: table full") for line in board.log("kvstore"))


def test_the_largest_table_leaves_the_runtime_room(make_board):
    """A table as large as table_kib allows: growth ends there, and the
    runtime still finds receive slots for its timer checks afterwards."""
    board = make_board("boardA", ram=1 << 30, caps=8192, tracking_unit_pages=64)
    board.cr.start("kvstore", ram_quota=120 * MIB, cap_quota=600,
                   config="table_kib=114688\nperiod_ms=1\ncheck_every=100000\nlog_every=100\n")
    board.run_until(lambda: any("table full" in line for line in board.log("kvstore"))
                    or trouble(board), timeout=5)
    assert "kvstore: table full at 114688 KiB (table_kib)" in board.log("kvstore")
    grown = last_step(board)
    board.run(2.5)                       # two timer checks at least
    assert last_step(board) > grown + 500
    assert not trouble(board), trouble(board)


def test_a_table_beyond_the_capability_map_is_refused(make_board):
    """Asking for more than the map holds gets the default table, not a map
    filled to its last slot (which used to stop the component's timer)."""
    board = make_board("boardA", ram=1 << 30, caps=8192, tracking_unit_pages=64)
    board.cr.start("kvstore", ram_quota=200 * MIB, cap_quota=1000,
                   config="table_kib=150000\nperiod_ms=1\ncheck_every=100000\nlog_every=100\n")
    board.run(2.5)
    log = board.log("kvstore")
    assert any(line.startswith("kvstore: table_kib=150000 is outside 1..114688") for line in log)
    assert "kvstore: table full at 8192 KiB (table_kib)" in log
    assert last_step(board) > 1000
    assert not trouble(board), trouble(board)
