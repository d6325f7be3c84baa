"""Every shipped component notices a restore that leaves badges untranslated.

The runtime uses its capabilities as base-foc does after start-up: each
parent call goes through the parent capability derived from the raw
``_parent_cap`` and checked against the capability map, and each timer asks
the parent for its Timer session again about once a second of sleep and
expects the answer at the slot it holds (a received capability is found by
its badge in the map). A restore that skips translating the map, the raw
parent capability, or both, makes each component log an error naming the
problem and stop its work within a bounded board time; a correct restore, a
plain run and an in-place pause/resume do not.
"""

import re

import pytest

from genode_cr.emu.capture import read_cap_map

from .conftest import errors_in

COMPONENTS = ("counter", "kvstore", "ticker")
#: Lines that show a component at work.
PROGRESS = {
    "counter": re.compile(r"^count \d+ "),
    "kvstore": re.compile(r"^step \d+ "),
    "ticker": re.compile(r"^(tick \d+|entrypoint answered ticks \d+)$"),
}
#: Board time within which a broken restore must show. The runtime checks its
#: timer after each second of sleep; the ticker's handler every 20 ticks (1 s).
BOUND_S = 2.5
#: Board time run after the first error; the last second of it must see no
#: work (another thread of the component may do some until its own check).
AFTERWARDS_S = 2.0


def progress(board, name):
    return [e.time_us for e in board.log_entries(name) if PROGRESS[name].match(e.text)]


def first_error_us(board, name):
    return next(e.time_us for e in board.log_entries(name) if e.text.startswith("Error"))


@pytest.fixture(scope="module")
def checkpoints(rom_dir):
    """A frozen checkpoint of each component, taken on boardA after its
    start-up and after a few of its own checks."""
    from genode_cr.emu import Board

    taken = {}
    for name in COMPONENTS:
        board = Board("boardA", rom_dir=rom_dir)
        board.cr.start(name)
        board.run(2.2)
        assert progress(board, name) and not errors_in(board, name), board.log(name)
        taken[name] = board.cr.checkpoint(name, freeze=True)
    return taken


def restore(make_board, checkpoint, skip=()):
    board = make_board("boardB")
    report = board.cr.restore(checkpoint, skip=skip)
    return board, report


@pytest.mark.parametrize("name", COMPONENTS)
def test_a_correct_restore_runs_clean(make_board, checkpoints, name):
    board, report = restore(make_board, checkpoints[name])
    start = board.kernel.now_us
    board.run(BOUND_S + AFTERWARDS_S)
    assert not errors_in(board, name), board.log(name)
    assert report.parent_cap_rewritten and report.cap_map_entries_translated > 5
    assert len([t for t in progress(board, name) if t > start + BOUND_S * 1e6]) >= 2


@pytest.mark.parametrize("skip, symptom", [
    (("translate_badges",), "Error: timer: badge check failed"),
    (("translate_cap_map",), "Error: parent capability"),
    (("rewrite_parent_cap",), "Error: parent capability"),
])
@pytest.mark.parametrize("name", COMPONENTS)
def test_an_untranslated_restore_fails_visibly(make_board, checkpoints, name, skip, symptom):
    board, report = restore(make_board, checkpoints[name], skip=skip)
    assert report.skipped == list(skip)
    start = board.kernel.now_us
    board.run_until(lambda: errors_in(board, name), timeout=BOUND_S)
    board.run(AFTERWARDS_S)
    errors = errors_in(board, name)
    assert any(line.startswith(symptom) for line in errors), board.log(name)
    assert not any("[core]" in line for line in errors), "a fault, not a diagnosis"
    assert first_error_us(board, name) - start <= BOUND_S * 1e6
    # The component stopped doing its work.
    assert not [t for t in progress(board, name) if t > board.kernel.now_us - 1e6], \
        board.log(name)


@pytest.mark.parametrize("name", COMPONENTS)
def test_the_raw_parent_cap_alone_decides(make_board, checkpoints, name):
    """The map translated, the raw parent capability left as it was: only
    the raw value is wrong, and that alone stops the component."""
    board, report = restore(make_board, checkpoints[name], skip=("rewrite_parent_cap",))
    assert not report.parent_cap_rewritten and report.cap_map_entries_translated > 5
    child = board.cr.children[name]
    assert read_cap_map(child)[0x8][0] == child.parent.badge
    raw = child.pd.read(checkpoints[name].manifest.parent_cap_addr, 8)
    assert int.from_bytes(raw[4:], "little") == checkpoints[name].manifest.parent.badge
    board.run(BOUND_S)
    assert any(f"badge {checkpoints[name].manifest.parent.badge}}}" in line
               for line in errors_in(board, name)), board.log(name)


@pytest.mark.parametrize("name", COMPONENTS)
def test_pause_and_resume_in_place_stays_clean(make_board, name):
    board = make_board("boardA")
    board.cr.start(name)
    board.run(1.3)
    board.cr.checkpoint(name, freeze=True)
    board.run(0.5)                      # frozen: nothing moves
    board.cr.resume(name)
    board.run(BOUND_S)
    assert not errors_in(board, name), board.log(name)
    assert progress(board, name)[-1] > board.kernel.now_us - 1e6


def test_a_plain_run_asks_its_parent_once_a_second(make_board):
    """The check is not vacuous: each time the counter asks for its Timer
    session again, base-foc's receive path counts one more reference on the
    slot it already holds."""
    board = make_board("boardA")
    board.cr.start("counter")
    board.run(0.5)
    child = board.cr.children["counter"]
    timer = next(r.session for r in child.sessions.values() if r.service == "Timer")
    slots = [i for i, (badge, _) in read_cap_map(child).items() if badge == timer.badge]
    assert len(slots) == 1
    before = read_cap_map(child)[slots[0]][1]
    board.run(5.0)
    after = read_cap_map(child)[slots[0]][1]
    assert 4 <= after - before <= 6
    assert not errors_in(board, "counter")
