"""``genode-cr``: one board's checkpoint/restore component from a shell.

    genode-cr board serve --name boardA --uart socket://127.0.0.1:0
    genode-cr -b socket://127.0.0.1:41234 start counter
    genode-cr -b socket://127.0.0.1:41234 checkpoint counter -o counter.ckpt --freeze
    genode-cr -b socket://127.0.0.1:41235 restore counter.ckpt

Presentation only: the work is done by BoardClient, BoardServer and
PackedCheckpoint (checkpoints stay as the board compressed them, from the
board to the file and from the file to the target board). Data goes to stdout (text, or JSON with ``-O json``), progress
and logs to stderr, and every error becomes one line on stderr and an exit
code chosen by the error's class, here and nowhere else. docs/cli.md has the
details.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn

import click

from . import errors
from .checkpoint import PAGE_SIZE, PackedCheckpoint, verify_chain
from .client import BoardClient, LogLine, Progress
from .emu.board import DEFAULT_TRACKING_UNIT_PAGES
from .model import ComponentInfo
from .inspection import describe, describe_text, human_size
from .units import SIZE
from .link import LinkDead, LinkReset

__all__ = ["main", "run", "cli", "exit_code_for", "EXIT_CODES"]

log = logging.getLogger("genode_cr.cli")

# --- exit codes ---------------------------------------------------------------------------

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_BAD_CHECKPOINT = 4
EXIT_BOARD_REFUSED = 5
EXIT_BAD_REQUEST = 6
EXIT_INTERRUPTED = 130

#: Error classes to exit codes, most specific first; anything else exits 1.
_EXIT_BY_CLASS: tuple[tuple[type[BaseException], int], ...] = (
    (errors.BoardUnreachable, EXIT_UNREACHABLE),
    (LinkDead, EXIT_UNREACHABLE),
    (LinkReset, EXIT_UNREACHABLE),
    (errors.CheckpointError, EXIT_BAD_CHECKPOINT),
    (errors.BoardError, EXIT_BOARD_REFUSED),
    (errors.RequestError, EXIT_BAD_REQUEST),
)

EXIT_CODES = """\b
Exit codes:
  0    success
  1    any other failure (protocol error, I/O error, internal error)
  2    usage error (unknown option, missing argument, bad value)
  3    board unreachable: nothing answers at the URL, the link died,
       or the board restarted during the request
  4    checkpoint refused: corrupt, tampered, truncated, broken chain,
       wrong architecture
  5    refused by the board: ROM missing or different, not enough RAM
       or capabilities
  6    bad request: unknown component, name already in use, no such
       restore session, nothing to checkpoint
  130  interrupted (Ctrl-C)
"""


def exit_code_for(error: BaseException) -> int:
    for cls, code in _EXIT_BY_CLASS:
        if isinstance(error, cls):
            return code
    return EXIT_FAILURE


# --- settings shared by the commands -------------------------------------------------------

DEFAULT_TIMEOUT = 30.0
#: The link handshake waits at most this long, or --timeout if that is shorter.
CONNECT_TIMEOUT = 10.0
#: How long `logs --follow` waits for a line; the link's keepalive notices a dead board.
FOLLOW_IDLE = 365 * 24 * 3600.0


@dataclass
class Settings:
    board: str | None = None
    baud: int | None = None
    timeout: float = DEFAULT_TIMEOUT
    output: str = "text"
    debug: bool = False

    @property
    def json(self) -> bool:
        return self.output == "json"


def _set_setting(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Global options repeated after the command name override the ones before it."""
    if value is not None:
        setattr(ctx.ensure_object(Settings), param.name, value)
    return value


_OUTPUT = click.Choice(["text", "json"])


#: -o is the output format everywhere but after `checkpoint`, where it names
#: the file; -O works everywhere.
OUTPUT_FLAGS = ("-o", "-O", "--output")


def _output_option(*flags: str, **kwargs: Any) -> Callable:
    return click.option(*(flags or OUTPUT_FLAGS), type=_OUTPUT, expose_value=False,
                        is_eager=True, callback=_set_setting,
                        help="text for people, json for scripts (errors too).", **kwargs)


def _client_options(f: Callable | None = None, *, output_flags: tuple[str, ...] = OUTPUT_FLAGS
                    ) -> Callable:
    """The global options, also accepted after the command (``genode-cr ps -o json``)."""
    if f is None:
        return lambda g: _client_options(g, output_flags=output_flags)
    for option in reversed([
        click.option("-b", "--board", metavar="URL", expose_value=False, callback=_set_setting,
                     help="The board's UART (same as the global option)."),
        click.option("--baud", type=click.IntRange(min=1), expose_value=False,
                     callback=_set_setting, help="Pace our writes to this line rate."),
        click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
                     expose_value=False, callback=_set_setting,
                     help="Give up on a silent board after this long."),
        _output_option(*output_flags),
    ]):
        f = option(f)
    return f


# --- output helpers --------------------------------------------------------------------------

def _emit(settings: Settings, data: dict, text: str | Callable[[], str] | None = None) -> None:
    """One result: JSON on stdout with -O json, else the text (if any)."""
    if settings.json:
        click.echo(json.dumps(data))
        return
    if callable(text):
        text = text()
    if text:
        click.echo(text)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in [headers, *rows]]
    return "\n".join(lines)


def _interactive_stderr() -> bool:
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


@contextlib.contextmanager
def _progress(description: str) -> Iterator[Progress | None]:
    """A transfer bar on stderr when stderr is a terminal; None (no reporting) otherwise."""
    if not _interactive_stderr():
        yield None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress as Bar, TextColumn,
                               TimeRemainingColumn, TransferSpeedColumn)
    with Bar(TextColumn("{task.description}"), BarColumn(), DownloadColumn(binary_units=True),
             TransferSpeedColumn(), TimeRemainingColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


class _ChainProgress:
    """BoardClient.restore reports each checkpoint from 0; this adds them up for one bar."""

    def __init__(self, update: Progress, chain: list[PackedCheckpoint]):
        self.update = update
        self.total = sum(len(c.pages) for c in chain) * PAGE_SIZE
        self._base = self._done = self._current_total = 0

    def __call__(self, done: int, total: int) -> None:
        if self._current_total and self._done == self._current_total:
            self._base += self._current_total        # the previous checkpoint is complete
        self._done, self._current_total = done, total
        self.update(self._base + done, self.total)


# --- talking to a board --------------------------------------------------------------------

@contextlib.contextmanager
def _connect(settings: Settings) -> Iterator[BoardClient]:
    if not settings.board:
        raise click.UsageError("no board given: use -b/--board URL or set GENODE_CR_BOARD")
    try:
        client = BoardClient.connect(settings.board, baud=settings.baud,
                                     pace=settings.baud is not None, timeout=settings.timeout,
                                     connect_timeout=min(settings.timeout, CONNECT_TIMEOUT))
    except ValueError as error:          # pyserial does not know the URL's scheme
        raise click.BadParameter(str(error), param_hint="'-b' / '--board'") from error
    with client:
        yield client


def _component_dict(info: ComponentInfo) -> dict:
    return asdict(info)


def _component_text(info: ComponentInfo) -> str:
    return (f"{info.name}: {info.state} (rom {info.rom}, RAM {human_size(info.ram_used)} of "
            f"{human_size(info.ram_quota)}, caps {info.cap_used} of {info.cap_quota}, "
            f"{info.threads} thread{'s' if info.threads != 1 else ''})")


# --- checkpoint files ----------------------------------------------------------------------

def _load(path: str, *, pages: bool = True) -> PackedCheckpoint:
    """Reads a checkpoint file and verifies it: the root digest and, with ``pages``,
    every page's content (decompressed to check; the compressed bytes are kept and
    are what a restore sends). Errors name the file."""
    data = Path(path).read_bytes()
    try:
        packed = PackedCheckpoint.from_bytes(data)
        if pages:
            packed.verify()
        return packed
    except errors.CheckpointError as error:
        raise type(error)(f"{path}: {error}") from error


def _load_chain(paths: tuple[str, ...]) -> tuple[list[PackedCheckpoint], dict[str, str]]:
    """The files in chain order (given in any order), and each checkpoint's file."""
    checkpoints = [_load(p) for p in paths]
    files = {c.id: p for c, p in zip(checkpoints, paths)}
    return verify_chain(checkpoints, each_verified=True), files


@contextlib.contextmanager
def _replaced_when_complete(path: str) -> Iterator[Callable[[bytes], None]]:
    """Yields write(data) for ``path``; the file appears complete or not at all.

    The temporary file is created first, so an unwritable target fails before the
    board is asked for anything (a frozen component is not left paused for nothing).
    """
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                   dir=target.parent)
    except OSError as error:
        raise OSError(f"cannot write {path}: {error.strerror or error}") from error
    written = False

    def write(data: bytes) -> None:
        nonlocal written
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
        file.close()
        os.replace(tmp, target)
        written = True

    with os.fdopen(fd, "wb") as file:
        try:
            yield write
        finally:
            if not written:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def _summary(checkpoint: PackedCheckpoint) -> dict:
    m = checkpoint.manifest
    return {
        "id": m.id, "parent_id": m.parent_id, "full": checkpoint.is_full,
        "component": m.component, "board": m.board, "arch": m.arch, "kernel": m.kernel,
        "sequence": m.sequence, "frozen": m.frozen, "taken_at_us": m.taken_at_us,
        "pages": len(checkpoint.pages), "page_bytes": checkpoint.page_bytes,
        "wire_bytes": checkpoint.wire_bytes,
        "root_digest": checkpoint.root_digest.hex(),
    }


def _kind(checkpoint: PackedCheckpoint) -> str:
    return "full" if checkpoint.is_full else f"incremental after {checkpoint.parent_id}"


# --- the commands ------------------------------------------------------------------------------

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT, epilog=EXIT_CODES)
@click.option("-b", "--board", envvar="GENODE_CR_BOARD", metavar="URL", expose_value=False,
              callback=_set_setting,
              help="The board's UART: socket://HOST:PORT or a device path [env: GENODE_CR_BOARD].")
@click.option("--baud", type=click.IntRange(min=1), expose_value=False, callback=_set_setting,
              help="Pace our writes to this line rate (a real UART's baud rate).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              default=DEFAULT_TIMEOUT, show_default=True, expose_value=False,
              callback=_set_setting,
              help=f"Give up on a silent board after this long (the link handshake waits "
                   f"at most {CONNECT_TIMEOUT:g} s).")
@_output_option(default="text", show_default=True)
@click.option("--debug", is_flag=True, expose_value=False, callback=_set_setting,
              help="Show tracebacks and debug logging on stderr.")
@click.version_option(package_name="genode-migrate", prog_name="genode-cr")
@click.pass_obj
def cli(settings: Settings) -> None:
    """Drive the checkpoint/restore component of one Genode board over its UART.

    Global options may also follow the command name (genode-cr ps -o json;
    after `checkpoint`, -o names the file and the format is -O/--output).
    A board serves one agent at a time: a second command waits for the first.
    """
    if settings.debug:
        logging.basicConfig(stream=sys.stderr, level=logging.DEBUG,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@cli.command(epilog=EXIT_CODES)
@_client_options
@click.pass_obj
def info(settings: Settings) -> None:
    """The board: name, architecture, free RAM and capabilities, ROM modules."""
    with _connect(settings) as board:
        i = board.info
    data = {"board": {
        "name": i.name, "arch": i.arch, "kernel": i.kernel,
        "protocol_version": i.protocol_version,
        "ram_total": i.ram_total, "ram_free": i.ram_free,
        "caps_total": i.caps_total, "caps_free": i.caps_free,
        "board_time_us": i.board_time_us, "baud": i.baud,
        "roms": [{"name": r.name, "digest": r.digest.hex(), "size": r.size} for r in i.roms],
    }}

    def text() -> str:
        lines = [
            f"board       {i.name}",
            f"arch        {i.arch} ({i.kernel})",
            f"protocol    {i.protocol_version}",
            f"ram         {human_size(i.ram_free)} free of {human_size(i.ram_total)}",
            f"caps        {i.caps_free} free of {i.caps_total}",
            f"board time  {i.board_time_us / 1e6:.3f} s",
            f"uart        {f'{i.baud} baud' if i.baud else 'not paced'}",
            "roms",
        ]
        lines += [f"  {r.name:<16} {r.digest.hex()[:16]}  {human_size(r.size)}" for r in i.roms]
        return "\n".join(lines)

    _emit(settings, data, text)


@cli.command(epilog=EXIT_CODES)
@_client_options
@click.pass_obj
def ps(settings: Settings) -> None:
    """The components the CR component is parent of."""
    with _connect(settings) as board:
        components = board.components()
    _emit(settings, {"components": [_component_dict(c) for c in components]},
          lambda: _table(["NAME", "ROM", "STATE", "RAM USED", "RAM QUOTA", "CAPS", "THREADS"],
                         [[c.name, c.rom, c.state, human_size(c.ram_used), human_size(c.ram_quota),
                           f"{c.cap_used}/{c.cap_quota}", str(c.threads)] for c in components]))


@cli.command(epilog=EXIT_CODES)
@click.argument("name")
@click.option("--rom", help="The ROM module to start [default: NAME].")
@click.option("--ram", type=SIZE, help="RAM quota, e.g. 16M [default: the board's].")
@click.option("--caps", type=click.IntRange(min=1), help="Capability quota [default: the board's].")
@click.option("--config", "config", metavar="FILE|TEXT",
              help="The component's config ROM: a file, or the text itself, settings "
                   "`key=value` separated by newlines or ';' [default: empty].")
@_client_options
@click.pass_obj
def start(settings: Settings, name: str, rom: str | None, ram: int | None,
          caps: int | None, config: str | None) -> None:
    """Start component NAME from a ROM module."""
    text = _config_text(config)
    with _connect(settings) as board:
        component = board.start(name, rom, ram_quota=ram or 0, cap_quota=caps or 0, config=text)
    _emit(settings, {"component": _component_dict(component)}, _component_text(component))


def _config_text(value: str | None) -> str:
    """--config names a file, or is the config itself (which has a `key=value`)."""
    if not value:
        return ""
    path = Path(value)
    if path.is_file():
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise click.BadParameter(f"cannot read {value}: {error}",
                                     param_hint="--config") from error
    if "=" not in value:
        raise click.BadParameter(f"{value!r} is neither a file nor `key=value` text",
                                 param_hint="--config")
    return value


def _lifecycle(verb: str, doc: str) -> None:
    @cli.command(verb, help=doc, epilog=EXIT_CODES)
    @click.argument("name")
    @_client_options
    @click.pass_obj
    def command(settings: Settings, name: str) -> None:
        with _connect(settings) as board:
            component = getattr(board, verb)(name)
        _emit(settings, {"component": _component_dict(component)}, _component_text(component))


_lifecycle("pause", "Pause component NAME: all its threads stop, its timers keep time.")
_lifecycle("resume", "Resume component NAME.")


@cli.command(epilog=EXIT_CODES)
@click.argument("name")
@_client_options
@click.pass_obj
def kill(settings: Settings, name: str) -> None:
    """Destroy component NAME and free its quota."""
    with _connect(settings) as board:
        board.kill(name)
    _emit(settings, {"killed": name}, f"{name}: killed")


def _line_dict(name: str, line: LogLine) -> dict:
    return {"component": name, "index": line.index, "time_us": line.time_us, "text": line.text}


@cli.command(epilog=EXIT_CODES)
@click.argument("name")
@click.option("-f", "--follow", is_flag=True,
              help="Keep printing new lines until interrupted (JSON: one object per line).")
@click.option("--from", "from_index", type=click.IntRange(min=0), default=0, metavar="N",
              help="Start at line N (0: the first).")
@_client_options
@click.pass_obj
def logs(settings: Settings, name: str, follow: bool, from_index: int) -> None:
    """The LOG output of component NAME on this board."""
    with _connect(settings) as board:
        if not follow:
            lines = board.logs(name, from_index)
            _emit(settings, {"component": name, "lines": [
                {"index": line.index, "time_us": line.time_us, "text": line.text}
                for line in lines]}, lambda: "\n".join(line.text for line in lines) or None)
            return
        for line in board.follow_logs(name, from_index, idle_timeout=FOLLOW_IDLE):
            click.echo(json.dumps(_line_dict(name, line)) if settings.json else line.text)


@cli.command(epilog=EXIT_CODES)
@click.argument("name")
@click.option("-o", "--file", "file", required=True, metavar="FILE",
              type=click.Path(dir_okay=False),
              help="Write the checkpoint here (replaced only once it is complete).")
@click.option("--since", metavar="FILE", type=click.Path(exists=True, dir_okay=False),
              help="An incremental checkpoint after this one (the last one taken of NAME).")
@click.option("--freeze", is_flag=True, help="Pause NAME for the checkpoint and leave it paused.")
@_client_options(output_flags=("-O", "--output"))
@click.pass_obj
def checkpoint(settings: Settings, name: str, file: str, since: str | None,
               freeze: bool) -> None:
    """Checkpoint component NAME to FILE: full, or incremental with --since."""
    since_id = _load(since, pages=False).id if since else None
    with _replaced_when_complete(file) as write:
        with _connect(settings) as board, _progress(f"checkpoint {name}") as progress:
            taken = board.checkpoint_packed(name, since=since_id, freeze=freeze,
                                            progress=progress)
        # Checked now, while the source may still be asked again; the file gets
        # the pages as the board compressed them.
        taken.verify()
        data = taken.to_bytes()
        write(data)
    summary = {"file": file, "file_size": len(data), **_summary(taken)}
    _emit(settings, {"checkpoint": summary},
          f"{name}: checkpoint {taken.id} ({_kind(taken)}, sequence {taken.manifest.sequence}, "
          f"{len(taken.pages)} pages, {'frozen' if taken.manifest.frozen else 'live'}) "
          f"written to {file} ({human_size(len(data))})")


@cli.command(epilog=EXIT_CODES)
@click.argument("files", nargs=-1, required=True, metavar="FILE...",
                type=click.Path(exists=True, dir_okay=False))
@click.option("--name", "new_name", metavar="NEW", help="Restore under this name.")
@_client_options
@click.pass_obj
def restore(settings: Settings, files: tuple[str, ...], new_name: str | None) -> None:
    """Restore a full checkpoint, or a chain of one and its incrementals in any order.

    Every file is verified, and the chain checked, before the board is touched.
    """
    chain, _ = _load_chain(files)
    with _connect(settings) as board, _progress(f"restore {chain[-1].component}") as progress:
        report = board.restore(chain, name=new_name,
                               progress=_ChainProgress(progress, chain) if progress else None)
    board_name = board.info.name
    _emit(settings, {"restore": {"board": board_name, **report.to_dict()}},
          f"{report.component}: restored on {board_name} from {report.checkpoint_id} "
          f"(chain of {report.chain_length}): {report.pages_written} pages, "
          f"{report.caps_installed} caps installed, {len(report.translations)} badges "
          f"translated, {report.irqs_rebound} IRQs rebound, {report.timers_rearmed} timers "
          f"re-armed, {report.threads} threads started")


@cli.command(epilog=EXIT_CODES)
@click.argument("files", nargs=-1, required=True, metavar="FILE...",
                type=click.Path(exists=True, dir_okay=False))
@_output_option()
@click.pass_obj
def verify(settings: Settings, files: tuple[str, ...]) -> None:
    """Verify checkpoint files offline; several files must form one chain."""
    if len(files) == 1:
        chain = [_load(files[0])]
        paths = {chain[0].id: files[0]}
    else:
        chain, paths = _load_chain(files)
    data = {"verified": [{"file": paths[c.id], **_summary(c)} for c in chain],
            "chain": [c.id for c in chain] if len(files) > 1 else None}

    def text() -> str:
        lines = [f"{paths[c.id]}: ok, {c.component} checkpoint {c.id} ({_kind(c)}, "
                 f"sequence {c.manifest.sequence}, {len(c.pages)} pages)" for c in chain]
        if len(files) > 1:
            lines.append(f"chain ok: {' -> '.join(c.id for c in chain)}")
        return "\n".join(lines)

    _emit(settings, data, text)


@cli.command(epilog=EXIT_CODES)
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@_output_option()
@click.pass_obj
def inspect(settings: Settings, file: str) -> None:
    """Show what a checkpoint file holds (offline; the file is verified first)."""
    checkpoint = _load(file)
    data = describe(checkpoint, file)
    _emit(settings, {"checkpoint": data}, lambda: describe_text(data))


@cli.group(context_settings=CONTEXT)
def board() -> None:
    """Run an emulated board."""


@board.command("serve", epilog=EXIT_CODES)
@click.option("--name", required=True, help="The board's name.")
@click.option("--uart", required=True, metavar="URL|DEVICE",
              help="socket://HOST:PORT to listen on (port 0: any free one), or a serial device.")
@click.option("--baud", type=click.IntRange(min=0), default=0, show_default=True,
              help="Pace the board's UART to this line rate; 0: as fast as the host can.")
@click.option("--rom-dir", type=click.Path(exists=True, file_okay=False),
              help="ROM modules [default: $GENODE_CR_ROM_DIR or build/roms].")
@click.option("--ram", type=SIZE, default="256M", show_default=True, help="The board's RAM.")
@click.option("--caps", type=click.IntRange(min=1), default=4096, show_default=True,
              help="The board's capabilities.")
@click.option("--tracking-unit-pages", type=click.IntRange(min=1), metavar="N",
              help=f"Dirty-tracking granularity in pages [default: the board's, "
                   f"{DEFAULT_TRACKING_UNIT_PAGES}].")
@click.option("--orphan-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
              metavar="S", help="Seconds a restore session outlives its agent's link, for the "
                                "agent to continue it over a new one.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True, help="Logging on stderr.")
@_output_option()
@click.pass_obj
def serve(settings: Settings, name: str, uart: str, baud: int, rom_dir: str | None, ram: int,
          caps: int, tracking_unit_pages: int | None, orphan_timeout: float,
          log_level: str) -> None:
    """Run an emulated board whose CR component serves --uart, until SIGTERM or Ctrl-C.

    Prints one line on stdout once it listens ("NAME listening on URL"; with
    -O json {"board": NAME, "url": URL}), then logs to stderr.
    """
    from .emu import Board
    from .server import BoardServer

    logging.basicConfig(stream=sys.stderr, level=getattr(logging, log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sizes = {"tracking_unit_pages": tracking_unit_pages} if tracking_unit_pages else {}
    server = BoardServer(Board(name, rom_dir=rom_dir, ram=ram, caps=caps, **sizes), baud=baud,
                         orphan_timeout=orphan_timeout)

    def ready(url: str) -> None:
        _emit(settings, {"board": name, "url": url}, f"{name} listening on {url}")
        sys.stdout.flush()
        log.info("%s: serving on %s%s", name, url, f" at {baud} baud" if baud else "")

    def stop(signum: int, frame: object) -> None:
        log.info("%s: %s, stopping", name, signal.Signals(signum).name)
        server.stop_event.set()
        signal.signal(signum, signal.SIG_DFL)     # a second one ends the process at once

    stops = (signal.SIGTERM, signal.SIGINT)
    previous = {s: signal.signal(s, stop) for s in stops} \
        if threading.current_thread() is threading.main_thread() else {}
    try:
        server.serve(uart, on_ready=ready)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    log.info("%s: stopped", name)


# --- the edge: errors to one line and an exit code ------------------------------------------

def _one_line(message: str) -> str:
    return " ".join(message.split()) or "failed"


def _report(settings: Settings, code: str, message: str) -> None:
    message = _one_line(message)
    if settings.json:
        with contextlib.suppress(OSError, ValueError):
            click.echo(json.dumps({"error": {"code": code, "message": message}}))
    click.echo(f"error: {message}", err=True)


def main(argv: list[str] | None = None) -> NoReturn:
    """The `genode-cr` command; exits with the code of the table in EXIT_CODES."""
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    """Runs the command line ``argv`` (default: sys.argv[1:]) and returns its exit code."""
    settings = Settings()
    try:
        result = cli.main(args=argv, prog_name="genode-cr", standalone_mode=False, obj=settings)
        return result if isinstance(result, int) else EXIT_OK
    except click.exceptions.Abort:            # click's name for KeyboardInterrupt
        _report(settings, "interrupted", "interrupted")
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        _report(settings, "interrupted", "interrupted")
        return EXIT_INTERRUPTED
    except click.ClickException as error:
        message = error.format_message()
        if isinstance(error, click.UsageError) and error.ctx is not None:
            message += f" (see '{error.ctx.command_path} --help')"
        _report(settings, "usage" if error.exit_code == EXIT_USAGE else "error", message)
        return error.exit_code
    except errors.GenodeCrError as error:
        if settings.debug:
            traceback.print_exc()
        _report(settings, error.code, str(error) or type(error).__name__)
        return exit_code_for(error)
    except BrokenPipeError:                   # stdout closed early (| head): stop quietly
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except OSError as error:
        if settings.debug:
            traceback.print_exc()
        _report(settings, "os_error", str(error))
        return EXIT_FAILURE
    except Exception as error:
        if settings.debug:
            traceback.print_exc()
        _report(settings, "internal", f"{type(error).__name__}: {error}")
        return EXIT_FAILURE


if __name__ == "__main__":
    main()
