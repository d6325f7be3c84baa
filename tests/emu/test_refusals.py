"""Every refusal leaves the target board exactly as it was."""

import pytest

from genode_cr import errors
from genode_cr.checkpoint import Checkpoint
from genode_cr.emu.capture import read_cap_map

from .conftest import counts


def board_state(board):
    return (board.cr.components(), board.free_ram, board.free_caps, len(board.kernel.badges),
            len(board.kernel.threads), sorted(board.logs))


@pytest.fixture
def source(make_board):
    a = make_board("boardA")
    a.cr.start("counter")
    a.run(1.0)
    return a


def altered(checkpoint, change):
    manifest = type(checkpoint.manifest)()
    manifest.CopyFrom(checkpoint.manifest)
    change(manifest)
    return Checkpoint(manifest, dict(checkpoint.pages))   # a fresh, valid root digest


def refuse(board, chain, error, **kwargs):
    before = board_state(board)
    with pytest.raises(error) as raised:
        board.cr.restore(chain, **kwargs)
    assert board_state(board) == before
    assert str(raised.value)
    return raised.value


def test_wrong_arch(source, make_board):
    checkpoint = altered(source.cr.checkpoint("counter"), lambda m: setattr(m, "arch", "arm64"))
    refuse(make_board("boardB"), checkpoint, errors.WrongArch)


def test_target_lacks_the_rom(source, rom_dir):
    from genode_cr.emu import Board
    target = Board("boardB", roms={"ticker": (rom_dir / "ticker").read_bytes()})
    refuse(target, source.cr.checkpoint("counter"), errors.RomMissing)


def test_target_rom_differs(source, rom_dir):
    from genode_cr.emu import Board
    image = bytearray((rom_dir / "counter").read_bytes())
    image[-1] ^= 0xFF
    target = Board("boardB", roms={"counter": bytes(image)})
    refuse(target, source.cr.checkpoint("counter"), errors.RomMismatch)


def test_broken_chain(source, make_board):
    full = source.cr.checkpoint("counter")
    source.run(0.5)
    first = source.cr.checkpoint("counter", since=full)
    source.run(0.5)
    second = source.cr.checkpoint("counter", since=first)
    target = make_board("boardB")
    refuse(target, [full, second], errors.BrokenChain)
    refuse(target, [first, second], errors.BrokenChain)
    refuse(target, [second], errors.BrokenChain)
    target.cr.restore([full, first, second])        # the whole chain is fine


def test_tampered_checkpoint(source, make_board):
    checkpoint = source.cr.checkpoint("counter")
    target = make_board("boardB")

    forged = Checkpoint(checkpoint.manifest, dict(checkpoint.pages), checkpoint.root_digest)
    forged.manifest.cpu.threads[0].state.r[4] ^= 1
    refuse(target, forged, errors.CheckpointCorrupt)

    digest = next(iter(checkpoint.pages))
    pages = dict(checkpoint.pages)
    pages[digest] = bytes(4096)
    refuse(target, Checkpoint(checkpoint.manifest, pages, checkpoint.root_digest),
           errors.CheckpointCorrupt)

    data = bytearray(checkpoint.to_bytes())
    data[len(data) // 2] ^= 0x40
    with pytest.raises(errors.CheckpointCorrupt):
        Checkpoint.from_bytes(bytes(data))


def test_truncated_checkpoint_is_refused_at_every_length(source):
    data = source.cr.checkpoint("counter").to_bytes()
    for length in list(range(0, len(data), max(1, len(data) // 200))) + [len(data) - 1]:
        with pytest.raises(errors.CheckpointCorrupt):
            Checkpoint.from_bytes(data[:length])
    assert Checkpoint.from_bytes(data).id


def test_name_in_use(source, make_board):
    checkpoint = source.cr.checkpoint("counter")
    target = make_board("boardB")
    target.cr.start("counter")
    target.run(0.5)
    refuse(target, checkpoint, errors.NameInUse)
    target.cr.restore(checkpoint, name="counter-2")
    target.run(0.5)
    assert counts(target, "counter-2")[0][0] == counts(source)[-1][0] + 1


def test_board_without_room(source, make_board):
    refuse(make_board("small", ram=8 << 20), source.cr.checkpoint("counter"),
           errors.InsufficientQuota)
    refuse(make_board("few caps", caps=100), source.cr.checkpoint("counter"),
           errors.InsufficientQuota)


def test_failure_midway_rolls_back(source, make_board):
    """A target whose badge space runs out while the restore creates objects
    (a consistent checkpoint passes every up-front check): everything built
    so far must be torn down again."""
    from genode_cr.emu.capability import BADGE_LIMIT
    checkpoint = source.cr.checkpoint("counter")
    target = make_board("boardB")
    target.cr.start("ticker")
    target.run(0.3)
    badges = target.kernel.badges
    while len(badges) < BADGE_LIMIT - 1 - 12:     # room for the child, not its sessions
        badges.alloc()
    error = refuse(target, checkpoint, errors.InsufficientQuota)
    assert "badge space exhausted" in str(error)
    target.run(0.5)
    assert target.cr.info("ticker").state == "running"


def test_source_keeps_running_after_a_refused_restore(source, make_board):
    checkpoint = altered(source.cr.checkpoint("counter"), lambda m: setattr(m, "arch", "x86_64"))
    with pytest.raises(errors.WrongArch):
        make_board("boardB").cr.restore(checkpoint)
    before = counts(source)[-1][0]
    source.run(0.5)
    assert counts(source)[-1][0] > before
    assert read_cap_map(source.cr.children["counter"])
