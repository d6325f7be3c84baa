"""Badges in hand-off: a system call delivered a badge (an RPC label in r1,
a received capability's badge in r4) and the thread was preempted before it
put the badge where its capability map keeps it. A checkpoint at that instant
would carry a badge no restore translates; the CR component settles such
threads first. These tests reach that instant on purpose, with short time
slices, and move the component to another board."""

import io
import random
import re

import pytest
from elftools.elf.elffile import ELFFile

from genode_cr.emu import abi
from genode_cr.emu.capture import read_cap_map
from genode_cr.emu.cpu import ThreadState
from genode_cr.emu.kernel import SETTLE_BUDGET
from genode_cr.errors import RequestError

from .conftest import errors_in

ANSWER = re.compile(r"^entrypoint answered ticks (\d+)$")
SEEDS = [11, 12, 13]
SYS_YIELD = abi.SYS_YIELD


@pytest.fixture(scope="module")
def consumers(rom_dir):
    """Address ranges of the runtime code that consumes a delivered badge."""
    elf = ELFFile(io.BytesIO((rom_dir / "ticker").read_bytes()))
    ranges = []
    for symbol in elf.get_section_by_name(".symtab").iter_symbols():
        if symbol.name in ("cap_lookup_badge", "cap_accept"):
            ranges.append((symbol["st_value"] & ~1, symbol["st_value"] + symbol["st_size"]))
    assert len(ranges) == 2
    return ranges


def answers(board):
    return [int(m[1]) for m in map(ANSWER.match, board.log("ticker")) if m]


def thread(board, name):
    return next((t for t in board.cr.children["ticker"].threads if t.name == name), None)


def holds_unconsumed(t, badge, consumers):
    """The thread is between the kernel's delivery of ``badge`` and the end of
    the lookup that consumes it, and the badge is only in its registers."""
    if t is None:
        return False
    pc = t.regs[15]
    return (t.state is ThreadState.READY and badge in t.regs[:13]
            and any(lo <= pc < hi for lo, hi in consumers))


def reach(board, predicate, rng, seed, timeout=3.0):
    """Runs in scheduling rounds of short random slices until ``predicate``."""
    kernel = board.kernel
    start = board.now
    while not predicate():
        assert board.now - start < timeout, f"seed {seed}: instant not reached"
        if not any(t.runnable for t in kernel.threads):
            # Straight to the next timer instead of a microsecond at a time.
            deadline = min(t.deadline_us for t in kernel.timers if t.deadline_us is not None)
            board.run(max(deadline - kernel.now_us, 1) / 1e6)
            continue
        kernel.quantum = rng.randint(5, 40)
        board.run(1e-6)


def entrypoint_label_in_hand(board, consumers):
    gates = board.cr.children["ticker"].pd.gates
    return bool(gates) and holds_unconsumed(thread(board, "ep"), gates[0].badge, consumers)


def timer_badge_in_hand(board, consumers):
    """The signal handler asked for its Timer session again (the badge is
    already in its map) and holds the returned badge in a register."""
    child = board.cr.children["ticker"]
    record = child.sessions.get(20)
    if record is None:
        return False
    badge = record.session.badge
    known = any(b == badge for b, _ in read_cap_map(child).values())
    return known and holds_unconsumed(thread(board, "signal handler"), badge, consumers)


def move_at(make_board, seed, instant, consumers, freeze=True):
    rng = random.Random(seed)
    a = make_board("boardA", quantum=rng.randint(5, 40))
    a.cr.start("ticker")
    reach(a, lambda: instant(a, consumers), rng, seed)
    handed = [t.name for t in a.cr.children["ticker"].threads if t.in_handoff]
    assert handed, f"seed {seed}: the kernel does not know of the hand-off"
    checkpoint = a.cr.checkpoint("ticker", freeze=freeze)
    assert not instant(a, consumers), f"seed {seed}: captured with the badge in hand"
    assert not any(t.in_handoff for t in a.cr.children["ticker"].threads)

    b = make_board("boardB")
    b.cr.restore(checkpoint)
    b.run(2.5)
    return a, b


@pytest.mark.parametrize("seed", SEEDS)
def test_entrypoint_label_in_hand_at_checkpoint(make_board, consumers, seed):
    a, b = move_at(make_board, seed, entrypoint_label_in_hand, consumers)
    assert not errors_in(b, "ticker"), f"seed {seed}: {b.log('ticker')}"
    assert len(answers(b)) >= 4, f"seed {seed}: {b.log('ticker')}"


@pytest.mark.parametrize("seed", SEEDS)
def test_received_capability_in_hand_at_checkpoint(make_board, consumers, seed):
    a, b = move_at(make_board, seed, timer_badge_in_hand, consumers, freeze=False)
    assert not errors_in(b, "ticker"), f"seed {seed}: {b.log('ticker')}"
    assert any(line.startswith("badge check ok") for line in b.log("ticker")), \
        f"seed {seed}: the badge check never ran after the move"
    a.run(1.5)                       # the live capture left the source intact
    assert not errors_in(a, "ticker"), f"seed {seed}: {a.log('ticker')}"


def test_settling_is_bounded_and_retryable(make_board, consumers):
    seed = SEEDS[0]
    rng = random.Random(seed)
    a = make_board("boardA", quantum=rng.randint(5, 40))
    a.cr.start("ticker")
    reach(a, lambda: entrypoint_label_in_hand(a, consumers), rng, seed)
    a.kernel.settle_budget = 3
    with pytest.raises(RequestError, match="try again"):
        a.cr.checkpoint("ticker", freeze=True)
    assert a.cr.info("ticker").state == "running", "a refused capture left the child paused"
    a.kernel.settle_budget = SETTLE_BUDGET
    checkpoint = a.cr.checkpoint("ticker", freeze=True)
    b = make_board("boardB")
    b.cr.restore(checkpoint)
    b.run(2.5)
    assert not errors_in(b, "ticker") and len(answers(b)) >= 4, b.log("ticker")


def test_settling_charges_board_time_and_keeps_the_syscall(make_board, consumers):
    """Settling stops the thread at its next svc without executing it: the
    thread is ready there, and the call happens when it next runs."""
    seed = SEEDS[1]
    rng = random.Random(seed)
    a = make_board("boardA", quantum=rng.randint(5, 40))
    a.cr.start("ticker")
    reach(a, lambda: entrypoint_label_in_hand(a, consumers), rng, seed)
    ep = thread(a, "ep")
    before = a.now
    assert a.kernel.settle(a.cr.children["ticker"].threads) == []
    assert a.now > before
    assert ep.state is ThreadState.READY and not ep.in_handoff
    svc = int.from_bytes(ep.pd.read(ep.regs[15], 4), "little")
    assert svc >> 24 == 0xEF and ep.regs[7] == 2, "not stopped at its SYS_REPLY_WAIT"
    a.run(2.0)
    assert not errors_in(a, "ticker") and len(answers(a)) >= 3, a.log("ticker")


@pytest.mark.parametrize("seed", [0, 2, 4])
def test_settling_a_thread_that_waits_for_the_cap_map_lock(make_board, monkeypatch, seed):
    """At start-up the ticker's threads receive capabilities at once: a thread
    in hand-off may find the capability-map lock taken by another thread and
    yield. Settling then runs the others to the kernel, so the lock is free,
    and gives the waiter another attempt."""
    from .test_cap_lock import map_disagrees_with_kernel

    rng = random.Random(seed)
    a = make_board("boardA", quantum=20)
    a.cr.start("ticker")
    kernel = a.kernel
    entries = []
    real_run = kernel._settle_run

    def recording_run(thread):
        entry = real_run(thread)
        entries.append((thread.name, entry))
        return entry

    monkeypatch.setattr(kernel, "_settle_run", recording_run)
    while True:
        assert a.now < 0.3, f"seed {seed}: no thread in hand-off ever waited for the lock"
        kernel.quantum = rng.randint(5, 40)
        a.run(1e-6)
        if not any(t.in_handoff for t in a.cr.children["ticker"].threads):
            continue
        entries.clear()
        checkpoint = a.cr.checkpoint("ticker")
        if any(entry == SYS_YIELD for _, entry in entries):
            break
    assert not any(t.in_handoff for t in a.cr.children["ticker"].threads)

    b = make_board("boardB")
    b.cr.restore(checkpoint)
    b.run(2.5)
    assert not errors_in(b, "ticker"), f"seed {seed} {entries}: {b.log('ticker')}"
    assert not map_disagrees_with_kernel(b.cr.children["ticker"]), f"seed {seed} {entries}"
    assert len(answers(b)) >= 4, f"seed {seed}: {b.log('ticker')}"
