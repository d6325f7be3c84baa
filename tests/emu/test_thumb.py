"""Threads preempted in Thumb code (libgcc's division helpers are Thumb-2
even in our ARM ROMs) resume in the Thumb state: in place, and after a
checkpoint restored on another board. The divider checks each result and
logs a running checksum, so a wrong resume shows as a fault, an error or a
log that differs from an undisturbed run's."""

import random

import pytest

from genode_cr.emu.cpu import THUMB

from .conftest import errors_in

CONFIG = "batch=25; batches=12; period_ms=0"
SEEDS = [1, 2, 3, 4, 5, 6, 7, 8]


@pytest.fixture(scope="module")
def undisturbed(rom_dir):
    from genode_cr.emu import Board
    if not (rom_dir / "divider").is_file():
        pytest.fail(f"ROM divider missing in {rom_dir}: run `make roms`")
    board = Board("reference", rom_dir=rom_dir)
    board.cr.start("divider", config=CONFIG)
    board.run(1.0)
    log = board.log("divider")
    assert log[-1] == "[cr] divider exited with code 0" and not errors_in(board, "divider"), log
    assert sum(line.startswith("batch ") for line in log) == 12
    return log


def in_thumb(board):
    thread = board.cr.children["divider"].threads[0]
    return bool(thread.regs[16] & THUMB)


def step(board, rng):
    board.kernel.quantum = rng.randint(1, 300)
    board.run(rng.choice([1e-6, 2e-6, 5e-6, 2e-5]))


def finish(board, rng, deadline=2.0):
    start = board.now
    while "divider" in board.cr.children and board.cr.info("divider").state == "running":
        assert board.now - start < deadline, board.log("divider")
        step(board, rng)


@pytest.mark.parametrize("seed", SEEDS)
def test_preempted_in_thumb_code_resumes_in_place(make_board, undisturbed, seed):
    rng = random.Random(seed)
    board = make_board("boardA", quantum=rng.randint(1, 300))
    board.cr.start("divider", config=CONFIG)
    seen_thumb = 0
    start = board.now
    while board.cr.info("divider").state == "running":
        assert board.now - start < 2.0, f"seed {seed}: {board.log('divider')}"
        step(board, rng)
        seen_thumb += in_thumb(board)
    assert seen_thumb > 5, f"seed {seed}: never preempted in Thumb code"
    assert board.log("divider") == undisturbed, f"seed {seed}"


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("freeze", [True, False])
def test_restore_of_a_thread_preempted_in_thumb_code(make_board, undisturbed, seed, freeze):
    rng = random.Random(seed * 1000 + freeze)
    a = make_board("boardA", quantum=rng.randint(1, 300))
    a.cr.start("divider", config=CONFIG)
    # Random instants, but one inside a division helper on purpose.
    for _ in range(rng.randint(0, 40)):
        step(a, rng)
    while not in_thumb(a):
        assert a.cr.info("divider").state == "running", f"seed {seed}: {a.log('divider')}"
        step(a, rng)
    checkpoint = a.cr.checkpoint("divider", freeze=freeze)
    before = a.log("divider")
    (thread,) = checkpoint.manifest.cpu.threads
    assert thread.state.cpsr & THUMB and thread.state.ip & 1 == 0, f"seed {seed}"

    b = make_board("boardB", quantum=rng.randint(1, 300))
    b.cr.restore(checkpoint)
    finish(b, rng)
    assert before + b.log("divider") == undisturbed, f"seed {seed}"
    if not freeze:
        finish(a, rng)
        assert a.log("divider") == undisturbed, f"seed {seed}"


def test_a_thumb_entry_point_starts_in_thumb_state(make_board):
    """Thread.start with an odd ip, as an interworking branch would."""
    board = make_board("boardA")
    board.cr.start("counter")
    child = board.cr.children["counter"]
    thread = child.cpu.create_thread(child.pd, "t")
    thread.start(0x1001, 0x40004000, 0)
    assert thread.regs[15] == 0x1000 and thread.regs[16] & THUMB


SLEEPY = "batch=10; batches=12; period_ms=1"


@pytest.fixture(scope="module")
def undisturbed_sleepy(rom_dir):
    from genode_cr.emu import Board
    board = Board("reference", rom_dir=rom_dir)
    board.cr.start("divider", config=SLEEPY)
    board.run(1.0)
    log = board.log("divider")
    assert log[-1] == "[cr] divider exited with code 0" and not errors_in(board, "divider"), log
    return log


@pytest.mark.parametrize("seed", SEEDS[:4])
def test_restore_of_a_thread_blocked_at_a_thumb_svc(make_board, undisturbed_sleepy, seed):
    """The divider sleeps in Thumb code: blocked there, its pc goes back by
    the 2 bytes of a Thumb svc, and the restored thread issues that call
    again (a restart from 4 bytes back would count twice and fail)."""
    rng = random.Random(seed)
    a = make_board("boardA", quantum=rng.randint(1, 300))
    a.cr.start("divider", config=SLEEPY)
    thread = a.cr.children["divider"].threads[0]
    for _ in range(rng.randint(0, 5)):
        a.run(0.001)
    while not (thread.state.value == "blocked" and in_thumb(a)):
        assert a.cr.info("divider").state == "running", f"seed {seed}: {a.log('divider')}"
        step(a, rng)
    svc = int.from_bytes(thread.pd.read(thread.regs[15], 2), "little")
    assert svc >> 8 == 0xDF, f"seed {seed}: pc {thread.regs[15]:#x} is not at the Thumb svc"
    checkpoint = a.cr.checkpoint("divider", freeze=True)
    before = a.log("divider")

    b = make_board("boardB", quantum=rng.randint(1, 300))
    b.cr.restore(checkpoint)
    b.run(1.0)
    assert before + b.log("divider") == undisturbed_sleepy, f"seed {seed}"
    a.cr.resume("divider")           # and in place, woken where it blocked
    a.run(1.0)
    assert a.log("divider") == undisturbed_sleepy, f"seed {seed}"
