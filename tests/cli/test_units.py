"""The CLI's own small parts: error classes to exit codes, sizes, progress."""

from __future__ import annotations

import click
import pytest

from genode_cr import cli, errors
from genode_cr.checkpoint import PAGE_SIZE
from genode_cr.link import LinkDead


@pytest.mark.parametrize("error, code", [
    (errors.BoardUnreachable("x"), 3),
    (LinkDead("x"), 3),
    (errors.CheckpointCorrupt("x"), 4),
    (errors.BrokenChain("x"), 4),
    (errors.WrongArch("x"), 4),
    (errors.CheckpointError("x"), 4),
    (errors.RomMissing("x"), 5),
    (errors.RomMismatch("x"), 5),
    (errors.InsufficientQuota("x"), 5),
    (errors.UnknownComponent("x"), 6),
    (errors.NameInUse("x"), 6),
    (errors.RequestError("x"), 6),
    (errors.ProtocolError("x"), 1),
    (errors.error_from_code("internal", "boom"), 1),
    (OSError("x"), 1),
])
def test_exit_code_by_error_class(error, code):
    assert cli.exit_code_for(error) == code


def test_an_error_the_board_reports_keeps_its_exit_code():
    assert cli.exit_code_for(errors.error_from_code("rom_mismatch", "differs")) == 5
    assert cli.exit_code_for(errors.error_from_code("name_in_use", "taken")) == 6


@pytest.mark.parametrize("text, value", [
    ("4096", 4096), ("64K", 64 << 10), ("16M", 16 << 20), ("16MiB", 16 << 20),
    ("1g", 1 << 30), ("2 kb", 2048),
])
def test_sizes(text, value):
    assert cli.SIZE.convert(text, None, None) == value


@pytest.mark.parametrize("text", ["", "lots", "1.5M", "-1", "16T"])
def test_bad_sizes(text):
    with pytest.raises(click.BadParameter):
        cli.SIZE.convert(text, None, None)


class _Chain:
    def __init__(self, pages):
        self.pages = dict.fromkeys(range(pages))


def test_chain_progress_adds_up_the_checkpoints_of_a_chain():
    seen = []
    chain = [_Chain(20), _Chain(1), _Chain(0), _Chain(17)]
    progress = cli._ChainProgress(lambda done, total: seen.append((done, total)), chain)
    P = PAGE_SIZE
    # What BoardClient.stage reports per checkpoint: after each chunk of up to 16 pages.
    for pages in (20, 1, 17):
        done = 0
        while done < pages:
            done = min(done + 16, pages)
            progress(done * P, pages * P)
    assert [d for d, _ in seen] == [16 * P, 20 * P, 21 * P, 37 * P, 38 * P]
    assert {t for _, t in seen} == {38 * P}


def test_no_progress_bar_unless_stderr_is_a_terminal(monkeypatch):
    monkeypatch.setattr(cli, "_interactive_stderr", lambda: False)
    with cli._progress("x") as update:
        assert update is None


def test_progress_bar_on_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_interactive_stderr", lambda: True)
    with cli._progress("checkpoint counter") as update:
        update(0, 8192)
        update(8192, 8192)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "checkpoint counter" in captured.err


def test_errors_are_one_line(capsys):
    cli._report(cli.Settings(output="json"), "protocol_error", "two\nlines  here")
    captured = capsys.readouterr()
    assert captured.err == "error: two lines here\n"
    assert captured.out == '{"error": {"code": "protocol_error", "message": "two lines here"}}\n'


def test_baud_paces_our_writes(monkeypatch, capsys):
    seen = {}

    def connect(url, **options):
        seen.update(options, url=url)
        raise errors.BoardUnreachable("nobody there")

    monkeypatch.setattr(cli.BoardClient, "connect", connect)
    assert cli.run(["-b", "socket://127.0.0.1:9", "--baud", "115200", "--timeout", "4",
                    "ps"]) == 3
    assert seen == {"url": "socket://127.0.0.1:9", "baud": 115200, "pace": True, "timeout": 4.0,
                    "connect_timeout": 4.0}
    assert cli.run(["ps", "-b", "socket://127.0.0.1:9"]) == 3
    assert (seen["baud"], seen["pace"], seen["timeout"]) == (None, False, cli.DEFAULT_TIMEOUT)
    assert capsys.readouterr().err == "error: nobody there\nerror: nobody there\n"


def test_lowercase_o_selects_json_and_checkpoint_keeps_its_file_option(tmp_path, capsys):
    import json

    from click.testing import CliRunner

    from genode_cr import cli as genode_cr_cli

    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    for args in (["-o", "json", "verify", str(bad)], ["verify", str(bad), "-o", "json"]):
        assert genode_cr_cli.run(args) == 4
        assert json.loads(capsys.readouterr().out)["error"]["code"] == "checkpoint_corrupt"
    runner = CliRunner()
    checkpoint_help = runner.invoke(genode_cr_cli.cli, ["checkpoint", "--help"]).output
    assert "-o, --file FILE" in checkpoint_help and "-O, --output" in checkpoint_help
    ps_help = runner.invoke(genode_cr_cli.cli, ["ps", "--help"]).output
    assert "-o, -O, --output" in ps_help
