"""``migrate``: the fleet from a shell, through the coordinator.

    migrate lab up --boards 2
    migrate start counter --on boardA
    migrate move counter --from boardA --to boardB
    migrate logs counter
    migrate lab down

Presentation only, as genode_cr/cli.py is: options in, one CoordinatorClient
call, rendering out. Data goes to stdout (text, or with ``-o json`` the RPC's
response message as JSON), progress and logs to stderr, and every error
becomes one line on stderr, ``Error: REASON: message``, and an exit code
chosen by the error's gRPC status, here and nowhere else (``_Migrate.invoke``).
docs/cli.md ("migrate") has the details.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import sys
import traceback
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, NoReturn

import click
from google.protobuf import json_format
from google.protobuf.message import Message

from genode_cr import errors as cr_errors
from genode_cr.checkpoint import PackedCheckpoint
from genode_cr.inspection import describe, describe_text, human_size
from genode_cr.units import SIZE

from . import __version__, config, errors, lab as lab_
from .client import DEFAULT_TIMEOUT, CoordinatorClient
from .moveview import (MoveProgressModel, enum_name, move_text, ms, open_view,
                       phase_name, plan_text, table, watch_move)
from .security import pki
from .security.identity import COORDINATOR, Identity, InvalidIdentity, parse_identity
from .security.tls import tls_from_flags
from .v1 import resources_pb2 as res

__all__ = ["main", "run", "cli", "Settings", "exit_code_for", "EXIT_CODES", "OperationFailed",
           "Interrupted", "message_dict", "describe_stored"]

# --- exit codes ---------------------------------------------------------------------------

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_REFUSED = 4
EXIT_UNAVAILABLE = 5
EXIT_DATA_LOSS = 6
EXIT_DENIED = 7
EXIT_INTERRUPTED = 130

#: An error's gRPC status (migrate.errors.status_of) to the exit code; anything else is 1.
_EXIT_BY_STATUS = {
    "INVALID_ARGUMENT": EXIT_USAGE,
    "NOT_FOUND": EXIT_NOT_FOUND,
    "ALREADY_EXISTS": EXIT_REFUSED,
    "ABORTED": EXIT_REFUSED,
    "FAILED_PRECONDITION": EXIT_REFUSED,
    "UNAVAILABLE": EXIT_UNAVAILABLE,
    "DATA_LOSS": EXIT_DATA_LOSS,
    "PERMISSION_DENIED": EXIT_DENIED,
    "UNAUTHENTICATED": EXIT_DENIED,
}

EXIT_CODES = """\b
Exit codes:
  0    success
  1    the operation failed: a move failed, was rolled back or cancelled,
       a checkpoint failed verification, a lab did not come up
  2    usage error: unknown option, missing argument, bad value
  3    not found: no such board, component, move, checkpoint or lab
  4    refused: a precondition failed (preflight, quota, ROM), the
       component is moving already, the owner is fenced, a lab runs
  5    unavailable: the coordinator, an agent or a board cannot be reached
  6    data loss: a stored checkpoint is corrupt
  7    denied: this identity may not make the call, or the TLS
       certificates were not accepted
  130  interrupted (Ctrl-C); during a move, after it was cancelled
"""


class OperationFailed(errors.MigrateError):
    """The request was accepted but what it asked for did not happen (exit 1).

    ``emitted``: the result (with its failure) is already on stdout, so the
    JSON error object is not printed a second time.
    """

    reason = "FAILED"

    def __init__(self, message: str, *, reason: str | None = None, emitted: bool = False):
        super().__init__(message, reason=reason)
        self.emitted = emitted


class Interrupted(errors.MigrateError):
    """Ctrl-C, after which the command cleaned up (exit 130)."""

    reason = "INTERRUPTED"

    def __init__(self, message: str = "interrupted", *, emitted: bool = False):
        super().__init__(message)
        self.emitted = emitted


def exit_code_for(error: BaseException) -> int:
    if isinstance(error, Interrupted | KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, OperationFailed):
        return EXIT_FAILED
    if isinstance(error, click.ClickException):
        return error.exit_code
    if isinstance(error, errors.MigrateError | cr_errors.GenodeCrError):
        return _EXIT_BY_STATUS.get(errors.status_of(error), EXIT_FAILED)
    return EXIT_FAILED


# --- settings shared by the commands -------------------------------------------------------

@dataclass
class Settings:
    coordinator: str | None = None
    config: str | None = None
    output: str = "text"
    timeout: float = DEFAULT_TIMEOUT
    quiet: bool = False
    debug: bool = False

    @property
    def json(self) -> bool:
        return self.output == "json"

    def client_config(self) -> config.ClientConfig:
        """The client file, MIGRATE_* (see migrate.config), and --coordinator over both."""
        loaded = config.load_client_config(self.config)
        return dataclasses.replace(loaded, coordinator=self.coordinator) if self.coordinator \
            else loaded

    def address(self) -> str:
        return self.client_config().coordinator

    def client(self) -> CoordinatorClient:
        return CoordinatorClient.from_config(self.client_config(), timeout=self.timeout)


def _set_setting(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """-o given after the command name overrides the one before it."""
    if value is not None:
        setattr(ctx.ensure_object(Settings), param.name, value)
    return value


_OUTPUT = click.Choice(["text", "json"])


def _output_option(**kwargs: Any) -> Callable:
    return click.option("-o", "--output", type=_OUTPUT, expose_value=False, is_eager=True,
                        callback=_set_setting,
                        help="text for people, json for scripts (errors too).", **kwargs)


def _command(group: click.Group, *args: Any, **kwargs: Any) -> Callable:
    """A subcommand of ``group`` that takes -o after its name too and lists the exit codes."""
    def decorate(f: Callable) -> click.Command:
        return group.command(*args, epilog=EXIT_CODES, **kwargs)(
            _output_option()(click.pass_obj(f)))
    return decorate


# --- output helpers ----------------------------------------------------------------------------

def message_dict(message: Message) -> dict:
    """A proto message as the JSON our -o json prints: field names as in the .proto, every
    field present, enums by name, 64-bit integers as numbers where a double holds them."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True,
                                     unquote_int64_if_possible=True)


def _emit(settings: Settings, data: dict, text: str | Callable[[], str | None] | None = None
          ) -> None:
    """One result: JSON on stdout with -o json, else the text (if any)."""
    if settings.json:
        click.echo(json.dumps(data))
        return
    if callable(text):
        text = text()
    if text:
        click.echo(text)


def _note(settings: Settings, message: str) -> None:
    """A remark for people on stderr (never data)."""
    if not settings.quiet:
        click.echo(message, err=True)


def _time(timestamp: Any) -> str:
    if not timestamp.seconds and not timestamp.nanos:
        return "-"
    return datetime.fromtimestamp(timestamp.seconds).strftime("%Y-%m-%d %H:%M:%S")


# --- the commands ------------------------------------------------------------------------------

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _Migrate(click.Group):
    """The top group: maps every error of a command to its report and exit code, once."""

    def invoke(self, ctx: click.Context) -> Any:
        settings = ctx.ensure_object(Settings)
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, BrokenPipeError):   # --help, or `| head`: click's
            raise
        except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 - reported, then exit
            ctx.exit(_exit_for(settings, error))


@click.group(cls=_Migrate, context_settings=CONTEXT, epilog=EXIT_CODES)
@click.option("--coordinator", metavar="HOST:PORT", expose_value=False, callback=_set_setting,
              help="The coordinator [default: $MIGRATE_COORDINATOR, else the client "
                   "configuration, which `migrate lab up` writes].")
@click.option("--config", metavar="FILE", expose_value=False, callback=_set_setting,
              help="The client configuration file [default: $MIGRATE_CONFIG, else "
                   "$XDG_CONFIG_HOME/genode-migrate/client.toml].")
@_output_option(default="text", show_default=True)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              default=DEFAULT_TIMEOUT, show_default=True, expose_value=False,
              callback=_set_setting, help="Deadline of each call to the coordinator "
              "(transfers of whole checkpoints get longer).")
@click.option("-q", "--quiet", is_flag=True, default=None, expose_value=False,
              callback=_set_setting, help="No progress or remarks on stderr.")
@click.option("--debug", is_flag=True, default=None, expose_value=False, callback=_set_setting,
              help="Tracebacks and debug logging on stderr.")
@click.version_option(__version__, "--version", prog_name="migrate")
@click.pass_obj
def cli(settings: Settings) -> None:
    """Move running, checkpointed Genode components between boards.

    Every command but `agent`, `coordinator` and `lab` talks to the
    coordinator. -o/--output may also follow the command name.
    """
    if settings.debug:
        logging.basicConfig(stream=sys.stderr, level=logging.DEBUG,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@_command(cli)
def boards(settings: Settings) -> None:
    """The boards, their health and free resources."""
    with settings.client() as c:
        found = c.list_boards()
    _emit(settings, {"boards": [message_dict(b) for b in found]}, lambda: table(
        ["NAME", "HEALTH", "AGENT", "ARCH", "RAM FREE", "CAPS FREE", "UART", "DETAIL"],
        [[b.name, enum_name(res.BoardHealth, b.health, "BOARD_HEALTH_"), b.agent_address,
          b.arch or "-", human_size(b.ram_free_bytes), str(b.caps_free),
          f"{b.baud} baud" if b.baud else "-", b.health_detail] for b in found]))


@_command(cli)
@click.option("--board", metavar="BOARD", default="", help="Only this board's components.")
def ps(settings: Settings, board: str) -> None:
    """The components, on every board or one."""
    with settings.client() as c:
        found = c.list_components(board)
    if found.unreachable_boards and not settings.json:
        _note(settings, f"unreachable: {', '.join(found.unreachable_boards)}")
    _emit(settings, message_dict(found), lambda: table(
        ["NAME", "BOARD", "ROM", "STATE", "RAM USED", "RAM QUOTA", "CAPS", "THREADS"],
        [[x.name, x.board, x.rom, x.state, human_size(x.ram_used_bytes),
          human_size(x.ram_quota_bytes), f"{x.cap_used}/{x.cap_quota}", str(x.threads)]
         for x in found.components]))


def _component_text(x: res.Component) -> str:
    return (f"{x.name}: {x.state} on {x.board} (rom {x.rom}, RAM {human_size(x.ram_used_bytes)} "
            f"of {human_size(x.ram_quota_bytes)}, caps {x.cap_used} of {x.cap_quota}, "
            f"{x.threads} thread{'s' if x.threads != 1 else ''})")


@_command(cli)
@click.argument("component")
@click.option("--on", "board", required=True, metavar="BOARD", help="The board to start it on.")
@click.option("--rom", default="", help="The ROM module [default: COMPONENT].")
@click.option("--config", "config_file", type=click.File("r"), metavar="FILE",
              help="The component's config ROM, from FILE ('-': stdin).")
@click.option("--ram", type=SIZE, default=0, help="RAM quota, e.g. 16M [default: the board's].")
@click.option("--caps", type=click.IntRange(min=1),
              help="Capability quota [default: the board's].")
def start(settings: Settings, component: str, board: str, rom: str, config_file: Any, ram: int,
          caps: int | None) -> None:
    """Start COMPONENT from a ROM module on a board."""
    text = config_file.read() if config_file else ""
    with settings.client() as c:
        started = c.start_component(component, board, rom=rom, ram_quota_bytes=ram,
                                    cap_quota=caps or 0, config=text)
    _emit(settings, {"component": message_dict(started)}, _component_text(started))


@_command(cli)
@click.argument("component")
def kill(settings: Settings, component: str) -> None:
    """Destroy COMPONENT wherever it runs."""
    with settings.client() as c:
        c.kill_component(component)
    _emit(settings, {"killed": component}, f"{component}: killed")


@_command(cli)
@click.argument("component")
@click.option("-f", "--follow", is_flag=True,
              help="Keep printing new lines, across moves, until Ctrl-C (JSON: one object "
                   "per line).")
@click.option("--tail", type=click.IntRange(min=0), default=0, metavar="N",
              help="Only the last N lines (0: all).")
def logs(settings: Settings, component: str, follow: bool, tail: int) -> None:
    """The LOG output of COMPONENT on the board it runs on."""
    with settings.client() as c:
        if follow:
            for line in c.stream_logs(component, follow=True, tail=tail):
                click.echo(json.dumps({"component": component, **message_dict(line)})
                           if settings.json else line.text)
            return
        lines = list(c.stream_logs(component, tail=tail))
    _emit(settings, {"component": component, "lines": [message_dict(x) for x in lines]},
          lambda: "\n".join(x.text for x in lines) or None)


_MODES = {"live": res.MOVE_MODE_LIVE, "stop-copy": res.MOVE_MODE_STOP_COPY}
_OVERSHOOT = {"abort": res.OVERSHOOT_POLICY_ABORT, "accept": res.OVERSHOOT_POLICY_ACCEPT}


@_command(cli)
@click.argument("component")
@click.option("--from", "source", default="", metavar="BOARD",
              help="The board it runs on (checked) [default: wherever it runs].")
@click.option("--to", "target", required=True, metavar="BOARD", help="The board to move it to.")
@click.option("--mode", type=click.Choice(list(_MODES)), default="live", show_default=True,
              help="live: pre-copy rounds while it runs; stop-copy: freeze, copy, restore.")
@click.option("--max-downtime", type=click.IntRange(min=1), metavar="MS",
              help="Downtime budget in milliseconds [default: the coordinator's, 300].")
@click.option("--on-overshoot", type=click.Choice(list(_OVERSHOOT)),
              help="When the budget cannot be met: abort (it keeps running on the source) "
                   "or accept the longer downtime [default: abort].")
@click.option("--link-grace", type=click.FloatRange(min=0, min_open=True), metavar="S",
              help="How long a lost link may take to come back before the move rolls back.")
@click.option("--max-rounds", type=click.IntRange(min=1), metavar="N",
              help="Most pre-copy rounds [default: the coordinator's, 8].")
@click.option("--dry-run", is_flag=True, help="Only run the checks and predict; nothing moves.")
@click.option("--detach", is_flag=True, help="Print the move's id and return at once.")
def move(settings: Settings, component: str, source: str, target: str, mode: str,
         max_downtime: int | None, on_overshoot: str | None, link_grace: float | None,
         max_rounds: int | None, dry_run: bool, detach: bool) -> None:
    """Move COMPONENT to another board while it runs.

    Shows the progress on stderr, then the move's report on stdout; Ctrl-C
    cancels the move and waits until the component runs on the source again.
    """
    options = res.MoveOptions(
        mode=_MODES[mode], max_downtime_ms=max_downtime or 0,
        on_overshoot=_OVERSHOOT[on_overshoot] if on_overshoot else 0,
        link_grace_ms=round(link_grace * 1000) if link_grace else 0, max_rounds=max_rounds or 0)
    with settings.client() as c:
        if dry_run:
            plan = c.plan_move(component, target, source_board=source, options=options)
            _emit(settings, {"plan": message_dict(plan)}, plan_text(plan))
            if not plan.feasible:
                failed = [x.name for x in plan.checks if not x.passed]
                refusal = errors.PreflightFailed(f"{component} cannot move to {target}: "
                                                 f"{', '.join(failed) or 'not feasible'}")
                refusal.emitted = True         # type: ignore[attr-defined] # the plan says why
                raise refusal
            return
        started = c.create_move(component, target, source_board=source, options=options)
        if detach:
            _emit(settings, {"move": message_dict(started)}, started.id)
            return
        model = MoveProgressModel()
        with open_view(model, quiet=settings.quiet) as view:
            ended, interrupted = watch_move(c, started, view)
    _emit(settings, {"move": message_dict(ended)}, lambda: move_text(ended))
    _raise_unless_done(ended, interrupted)


def _raise_unless_done(m: res.Move, interrupted: bool = False) -> None:
    where = m.target_board if m.phase == res.MOVE_PHASE_DONE else m.source_board
    if interrupted:
        raise Interrupted(f"move {m.id} {phase_name(m.phase)}: {m.component} runs on {where}",
                          emitted=True)
    if m.phase != res.MOVE_PHASE_DONE:
        detail = f": {m.error.message}" if m.error.message else ""
        reason = m.error.reason or res.MovePhase.Name(m.phase).removeprefix("MOVE_PHASE_")
        raise OperationFailed(f"move {m.id} {phase_name(m.phase)}{detail}", reason=reason,
                              emitted=True)


@cli.group(context_settings=CONTEXT, invoke_without_command=True, epilog=EXIT_CODES)
@click.option("--component", default="", metavar="C", help="Only the moves of this component.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="At most this many, newest first.")
@_output_option()
@click.pass_context
def moves(ctx: click.Context, component: str, limit: int) -> None:
    """The moves, newest first; `moves show ID` shows one."""
    if ctx.invoked_subcommand:
        return
    settings: Settings = ctx.obj
    with settings.client() as c:
        found = c.list_moves(component, limit=limit)
    _emit(settings, {"moves": [message_dict(m) for m in found]}, lambda: table(
        ["ID", "COMPONENT", "FROM", "TO", "PHASE", "CREATED", "DOWNTIME", "TOTAL"],
        [[m.id, m.component, m.source_board, m.target_board, phase_name(m.phase),
          _time(m.create_time), ms(m.downtime_ms) if m.downtime_ms else "-",
          ms(m.total_ms) if m.total_ms else "-"] for m in found]))


@_command(moves, "show")
@click.argument("move_id", metavar="ID")
def moves_show(settings: Settings, move_id: str) -> None:
    """One move: its phase, rounds, times and outcome."""
    with settings.client() as c:
        found = c.get_move(move_id)
    _emit(settings, {"move": message_dict(found)}, lambda: move_text(found))


@_command(cli)
@click.argument("move_id", metavar="ID")
def cancel(settings: Settings, move_id: str) -> None:
    """Cancel a move: the component keeps (or resumes) running on its source."""
    with settings.client() as c:
        found = c.cancel_move(move_id)
    _emit(settings, {"move": message_dict(found)},
          f"move {move_id}: cancel requested ({phase_name(found.phase)})")


def _stored_text(x: res.StoredCheckpoint) -> str:
    kind = f"incremental after {x.parent_id}" if x.parent_id else "full"
    return (f"{x.component}: checkpoint {x.id} on {x.board} ({kind}, sequence {x.sequence}, "
            f"{'frozen' if x.frozen else 'live'}, {x.pages} pages, {human_size(x.page_bytes)}, "
            f"{human_size(x.stored_bytes)} stored)")


@_command(cli)
@click.argument("component")
@click.option("--full", is_flag=True, help="A full checkpoint, not an incremental one.")
def checkpoint(settings: Settings, component: str, full: bool) -> None:
    """Checkpoint COMPONENT into the coordinator's store while it runs."""
    with settings.client() as c:
        taken = c.create_checkpoint(component, full=full)
    _emit(settings, {"checkpoint": message_dict(taken)}, _stored_text(taken))


@cli.group(context_settings=CONTEXT)
def checkpoints() -> None:
    """The coordinator's stored checkpoints."""


@_command(checkpoints, "ls")
@click.argument("component", required=False, default="")
def checkpoints_ls(settings: Settings, component: str) -> None:
    """Stored checkpoints, of every component or one."""
    with settings.client() as c:
        found = c.list_checkpoints(component)
    _emit(settings, {"checkpoints": [message_dict(x) for x in found]}, lambda: table(
        ["ID", "COMPONENT", "BOARD", "SEQ", "KIND", "CREATED", "PAGES", "STORED"],
        [[x.id, x.component, x.board, str(x.sequence),
          f"after {x.parent_id}" if x.parent_id else "full", _time(x.create_time),
          str(x.pages), human_size(x.stored_bytes)] for x in found]))


def describe_stored(stored: res.StoredCheckpoint, manifest: Message) -> dict:
    """genode_cr.inspection's description of a stored checkpoint's manifest.

    Its pages stay in the store, so the sizes are the store's and which
    pages each dataspace carries is not known here (None).
    """
    described = describe(PackedCheckpoint(manifest, {}, stored.root_digest), None)
    for dataspace in described["dataspaces"]:
        dataspace["carried_pages"] = None
    described["sizes"] = {"file": None, "manifest": described["sizes"]["manifest"],
                          "pages_carried": stored.pages, "page_bytes": stored.page_bytes,
                          "wire_bytes": stored.stored_bytes}
    return described


@_command(checkpoints, "inspect")
@click.argument("checkpoint_id", metavar="ID")
def checkpoints_inspect(settings: Settings, checkpoint_id: str) -> None:
    """What a stored checkpoint holds: its object tree, as `genode-cr inspect` shows it."""
    with settings.client() as c:
        found = c.get_checkpoint(checkpoint_id)
    described = describe_stored(found.checkpoint, found.manifest)
    _emit(settings, {"checkpoint": message_dict(found.checkpoint), "manifest": described},
          lambda: f"stored       {_stored_text(found.checkpoint)}, created "
                  f"{_time(found.checkpoint.create_time)}\n{describe_text(described)}")


@_command(checkpoints, "verify")
@click.argument("checkpoint_id", metavar="ID")
def checkpoints_verify(settings: Settings, checkpoint_id: str) -> None:
    """Verify a stored checkpoint and its chain: every page against its digest."""
    with settings.client() as c:
        result = c.verify_checkpoint(checkpoint_id)
    _emit(settings, message_dict(result),
          f"checkpoint {checkpoint_id}: {'ok' if result.ok else 'FAILED'} (chain of "
          f"{result.chain_length}, {result.pages_checked} pages checked)"
          + (f": {result.detail}" if result.detail else ""))
    if not result.ok:
        raise OperationFailed(f"checkpoint {checkpoint_id} failed verification: "
                              f"{result.detail or 'no detail'}", reason="VERIFY_FAILED",
                              emitted=True)


@_command(checkpoints, "rm")
@click.argument("checkpoint_id", metavar="ID")
def checkpoints_rm(settings: Settings, checkpoint_id: str) -> None:
    """Delete a stored checkpoint and the incrementals that depend on it."""
    with settings.client() as c:
        result = c.delete_checkpoint(checkpoint_id)
    _emit(settings, message_dict(result),
          f"deleted {result.deleted} checkpoint{'s' if result.deleted != 1 else ''}, freed "
          f"{human_size(result.freed_bytes)}")


@_command(cli)
@click.argument("checkpoint_id", metavar="CKPT_ID")
@click.option("--to", "target", required=True, metavar="BOARD", help="The board to restore on.")
@click.option("--name", default="", help="Restore under this name [default: the component's].")
def restore(settings: Settings, checkpoint_id: str, target: str, name: str) -> None:
    """Restore a stored checkpoint (and its chain) on a board: failover."""
    with settings.client() as c:
        result = c.restore_checkpoint(checkpoint_id, target, name=name)
    r = result.report
    _emit(settings, message_dict(result),
          f"{result.component.name}: restored on {result.component.board} from "
          f"{checkpoint_id} (chain of {r.chain_length}): {r.pages_written} pages, "
          f"{r.caps_installed} caps installed, {len(r.translations)} badges translated, "
          f"{r.threads} threads started")


# --- the audit log -----------------------------------------------------------------------------

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Since(click.ParamType):
    """A duration back from now (30s, 10m, 2h, 7d) or a local time (2025-05-01T10:00)."""

    name = "DURATION|TIME"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        if isinstance(value, float):
            return value
        text = str(value).strip()
        unit = _DURATION_UNITS.get(text[-1:].lower())
        if unit is not None and text[:-1].replace(".", "", 1).isdigit():
            return datetime.now().timestamp() - float(text[:-1]) * unit
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            self.fail(f"{text!r} is neither a duration (30s, 10m, 2h, 7d) nor a time "
                      "(2025-05-01T10:00)", param, ctx)


def _audit_time(event: Any) -> str:
    return datetime.fromtimestamp(event.time.seconds + event.time.nanos / 1e9
                                  ).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _who(value: str) -> str:
    """An identity as the log keeps it (its URI) from ``role/name`` or the URI."""
    try:
        return parse_identity(value).uri if value else ""
    except InvalidIdentity as error:
        raise click.BadParameter(str(error), param_hint="--who") from None


@cli.group(context_settings=CONTEXT, invoke_without_command=True, epilog=EXIT_CODES)
@click.option("--since", type=Since(), metavar="DURATION|TIME",
              help="Only events since then: a duration back from now (30s, 10m, 2h, 7d) or "
                   "a local time (2025-05-01T10:00).")
@click.option("--who", default="", metavar="ID",
              help="Only the calls of this identity (role/name or its URI).")
@click.option("--method", default="", metavar="RPC", help="Only this call (e.g. CreateMove).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="At most this many, the newest.")
@_output_option()
@click.pass_context
def audit(ctx: click.Context, since: float | None, who: str, method: str, limit: int) -> None:
    """Who changed the fleet, and who was refused: the coordinator's audit log,
    oldest first. `audit verify` checks that it was not altered."""
    if ctx.invoked_subcommand:
        return
    settings: Settings = ctx.obj
    with settings.client() as c:
        found = c.list_audit_events(identity=_who(who), method=method, since=since,
                                    limit=limit)
    found.reverse()                           # the newest page, read top to bottom
    _emit(settings, {"events": [message_dict(e) for e in found]}, lambda: table(
        ["SEQ", "TIME", "WHO", "METHOD", "ARGUMENTS", "OUTCOME", "RESOURCE"],
        [[str(e.seq), _audit_time(e), e.identity or f"(none) {e.peer}", e.method,
          " ".join(f"{k}={v}" for k, v in sorted(e.arguments.items())) or "-",
          e.outcome + (f": {_one_line(e.detail)[:80]}" if e.detail else ""),
          e.resource or "-"] for e in found]))


@_command(audit, "verify")
@click.option("--db", "db_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Verify a coordinator's store file here (coordinator.sqlite in its "
                   "state_dir) instead of asking the coordinator.")
def audit_verify(settings: Settings, db_file: str | None) -> None:
    """Recompute the audit log's hash chain: the first altered row, if any.

    Prints the head (last seq and hash): kept elsewhere, it shows later that the
    rows up to it are unchanged.
    """
    if db_file:
        from .store.audit import verify_file
        found = verify_file(db_file)
        ok, events, broken, detail = found.ok, found.events, found.first_broken_seq, found.detail
        head_seq, head_hash = found.head_seq, found.head_hash
    else:
        with settings.client() as c:
            answer = c.verify_audit_log()
        ok, events, broken, detail = (answer.ok, answer.events, answer.first_broken_seq,
                                      answer.detail)
        head_seq, head_hash = answer.head_seq, answer.head_hash
    _emit(settings, {"ok": ok, "events": events, "first_broken_seq": broken, "detail": detail,
                     "head_seq": head_seq, "head_hash": head_hash.hex()},
          f"{'ok' if ok else 'BROKEN'}: {detail}\nhead: {head_seq} {head_hash.hex()}")
    if not ok:
        raise OperationFailed(f"the audit log was altered at row {broken}: {detail}",
                              reason="AUDIT_BROKEN", emitted=True)


# --- the service's processes -------------------------------------------------------------------

def _serve_logging(settings: Settings) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if settings.debug else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


@cli.command(epilog=EXIT_CODES)
@click.option("--board-url", required=True, metavar="URL",
              help="The board's UART: socket://HOST:PORT or a serial device.")
@click.option("--listen", required=True, metavar="HOST:PORT", help="Serve gRPC here (port 0: any).")
@click.option("--baud", type=click.IntRange(min=1),
              help="The serial device's line rate (socket:// URLs ignore it).")
@click.option("--tls-ca", metavar="FILE", help="The CA that signs the coordinator (PEM).")
@click.option("--tls-cert", metavar="FILE", help="This agent's certificate (PEM).")
@click.option("--tls-key", metavar="FILE", help="Its private key (PEM).")
@click.option("--coordinator-identity", metavar="URI", default=COORDINATOR.uri,
              show_default=True, help="The only coordinator whose calls are accepted.")
@click.option("--plaintext", is_flag=True,
              help="No TLS: serve on a loopback address only (every local caller counts as "
                   "the coordinator).")
@click.option("--signing-key", metavar="FILE",
              help="Sign streamed checkpoints with this Ed25519 key (<role>-<name>.signing.key).")
@click.option("--trusted-signers", "trusted", metavar="DIR", multiple=True,
              help="Stage checkpoints signed by any *.signing.pub in DIR (repeatable).")
@click.option("--trusted-signer", "trusted_files", metavar="FILE", multiple=True,
              help="Stage checkpoints signed by this public key (repeatable).")
@click.option("--allow-unsigned", is_flag=True,
              help="With --plaintext only: stage unsigned checkpoints too.")
@click.pass_obj
def agent(settings: Settings, board_url: str, listen: str, baud: int | None,
          tls_ca: str | None, tls_cert: str | None, tls_key: str | None,
          coordinator_identity: str, plaintext: bool, signing_key: str | None,
          trusted: tuple[str, ...], trusted_files: tuple[str, ...],
          allow_unsigned: bool) -> None:
    """Run a board's agent until SIGTERM or Ctrl-C.

    Serves mutual TLS (--tls-ca, --tls-cert, --tls-key), or plaintext on loopback when
    asked for (--plaintext). Signs the checkpoints it streams (--signing-key) and stages
    only checkpoints signed by a trusted signer (--trusted-signers, --trusted-signer).
    Prints "agent for BOARD listening on HOST:PORT" once it serves and the board answered.
    """
    from .agent.server import run as run_agent, signing_from_flags
    tls = tls_from_flags(tls_ca, tls_cert, tls_key, plaintext=plaintext)
    coordinator = _identity_option("--coordinator-identity", coordinator_identity)
    signer, trusted_signers = signing_from_flags(signing_key, [*trusted, *trusted_files],
                                                 allow_unsigned, tls)
    _serve_logging(settings)
    run_agent(board_url, listen, baud=baud, tls=tls, coordinator=coordinator, signer=signer,
              trusted=trusted_signers, allow_unsigned=allow_unsigned)


@cli.command("coordinator", epilog=EXIT_CODES)
@click.option("--config", "config_file", required=True, metavar="FILE",
              type=click.Path(exists=True, dir_okay=False), help="The coordinator's TOML.")
@click.pass_obj
def coordinator_command(settings: Settings, config_file: str) -> None:
    """Run the coordinator until SIGTERM or Ctrl-C.

    Prints "coordinator listening on HOST:PORT" once it serves.
    """
    from .coordinator.server import run as run_coordinator
    loaded = config.load_coordinator_config(config_file)
    _serve_logging(settings)

    def ready(address: str) -> None:
        click.echo(f"coordinator listening on {address}")
        sys.stdout.flush()             # the line a supervisor (or `lab up`) waits for

    run_coordinator(loaded, ready=ready)


# --- certificates ------------------------------------------------------------------------------

def _identity_option(option: str, value: str) -> Identity:
    try:
        return parse_identity(value)
    except InvalidIdentity as error:
        raise click.BadParameter(str(error), param_hint=option) from None


@cli.group(context_settings=CONTEXT)
def certs() -> None:
    """TLS certificates for a lab or a test fleet."""


@_command(certs, "init")
@click.option("--dir", "directory", type=click.Path(file_okay=False), metavar="DIR",
              help="Where to put them [default: $XDG_CONFIG_HOME/genode-migrate/certs].")
@click.option("--board", "boards", multiple=True, metavar="NAME",
              help="A board whose agent gets a certificate (repeatable) [default: boardA, "
                   "boardB].")
@click.option("--operator", "operators", multiple=True, metavar="NAME",
              help="An operator identity (repeatable) [default: operator].")
@click.option("--viewer", "viewers", multiple=True, metavar="NAME",
              help="A viewer identity (repeatable) [default: viewer].")
@click.option("--days", type=click.IntRange(min=1), default=pki.DEFAULT_DAYS, show_default=True,
              help="How long the certificates are valid.")
def certs_init(settings: Settings, directory: str | None, boards: tuple[str, ...],
               operators: tuple[str, ...], viewers: tuple[str, ...], days: int) -> None:
    """Create a development CA and a certificate per identity.

    The coordinator, each board's agent (agent/NAME), each operator and viewer get an
    ECDSA P-256 certificate whose SAN URI is spiffe://genode-migrate/ROLE/NAME, as
    ROLE-NAME.crt and .key; the coordinator and agents also get Ed25519 signing keys
    (ROLE-NAME.signing.key/.pub). Running it again keeps what is there and valid and
    adds what is missing. For labs and tests: the CA's key lies beside them
    (docs/security.md tells how to deploy with your own CA).
    """
    target = Path(directory) if directory else config.certs_home()
    try:
        made = pki.init_lab(target, boards=boards or lab_.board_names(2),
                            operators=operators or ("operator",),
                            viewers=viewers or ("viewer",), days=days)
    except InvalidIdentity as error:
        raise click.BadParameter(str(error)) from None
    identities = [i.uri for i in made.identities]
    _emit(settings, {"dir": str(made.directory), "ca": str(made.ca), "identities": identities,
                     "written": made.written},
          lambda: "\n".join([f"{made.directory}: {len(made.written)} files written"
                             + (f" ({', '.join(made.written)})" if made.written else ""),
                             *(f"  {i.uri:56} {i.file_stem}.crt" for i in made.identities)]))


# --- the lab -----------------------------------------------------------------------------------

@cli.group(context_settings=CONTEXT)
def lab() -> None:
    """A local fleet: boards, their agents and a coordinator as background processes."""


def _lab_status(settings: Settings, current: lab_.Lab) -> dict:
    found, error = None, ""
    if current.coordinator:
        try:
            # Reading needs no more than the viewer's certificate.
            with lab_.lab_client(current, lab_.LAB_VIEWER,
                                 timeout=min(settings.timeout, 5.0)) as c:
                found = c.list_boards()
        except errors.MigrateError as e:
            error = f"{errors.reason_of(e)}: {e}"
    return lab_.lab_status(current, found, error)


def _lab_text(status: dict) -> str:
    def alive(p: dict) -> str:
        return "-" if p["pid"] is None else ("up" if p["alive"] else "DEAD")

    c = status["coordinator"]
    rows = [["coordinator", str(c["pid"] or "-"), alive(c), c["address"] or "-", "",
             c["log"] or ""]]
    for b in status["boards"]:
        vm = b.get("vm_state")
        rows.append([b["name"] + (" (vm)" if b.get("kind") == "qemu" else ""),
                     str(b["board"]["pid"] or "-"),
                     f"vm {vm}" if vm and alive(b["board"]) == "up" else alive(b["board"]),
                     b["url"] or "-",
                     b["health"].lower().replace("_", "-"),
                     b.get("vm_console") or b["board"]["log"] or ""])
        rows.append(["  agent", str(b["agent"]["pid"] or "-"), alive(b["agent"]),
                     b["agent_address"] or "-", "", b["agent"]["log"] or ""])
    lines = [table(["PROCESS", "PID", "STATE", "ADDRESS", "HEALTH", "LOG"], rows)]
    if c["error"]:
        lines.append(f"coordinator: {c['error']}")
    lines.append(f"client configuration: {status['client_config'] or '-'}")
    tls = status.get("tls") or {}
    lines.append(f"mutual TLS, certificates in {tls['dir']}" if tls.get("enabled")
                 else "plaintext on loopback (no TLS)")
    return "\n".join(lines)


@_command(lab, "up")
@click.option("--boards", "count", type=click.IntRange(min=1, max=99), default=2,
              show_default=True, help="How many boards.")
@click.option("--baud", type=click.IntRange(min=0), default=lab_.DEFAULT_BAUD, show_default=True,
              help="Each board's UART line rate; 0: not paced.")
@click.option("--qemu", is_flag=True,
              help="Boot each board as a QEMU virtual machine (make qemu-image builds its "
                   "image); its UART is QEMU's, --baud does not apply.")
@click.option("--plaintext", is_flag=True,
              help="No TLS between the lab's processes (all on loopback).")
@click.option("--certs-dir", type=click.Path(file_okay=False), metavar="DIR",
              help="The lab's certificates, made or completed as `certs init` does "
                   "[default: $XDG_CONFIG_HOME/genode-migrate/certs].")
def lab_up(settings: Settings, count: int, baud: int, qemu: bool, plaintext: bool,
           certs_dir: str | None) -> None:
    """Start a lab and point the client configuration at its coordinator.

    Every hop is mutual TLS with the lab's certificates (made when missing); the
    client configuration uses the operator's. --plaintext runs it without TLS.
    """
    if plaintext and certs_dir:
        raise click.UsageError("--plaintext and --certs-dir: choose one")
    try:
        started = lab_.start_lab(count, baud, report=lambda m: _note(settings, m), qemu=qemu,
                                 plaintext=plaintext,
                                 certs_dir=Path(certs_dir) if certs_dir else None)
    except lab_.LabFailed as error:
        if error.log_tail and not settings.quiet:
            click.echo(f"last lines of {error.log}:", err=True)
            click.echo("\n".join("  " + x for x in error.log_tail.splitlines()), err=True)
        raise
    status = _lab_status(settings, started)
    _emit(settings, {"lab": status},
          lambda: _lab_text(status) + "\n`migrate lab down` stops it.")


@_command(lab, "status")
def lab_status_command(settings: Settings) -> None:
    """Each lab process (alive?), each board's health, every address."""
    current = lab_.load_lab()
    if current is None:
        raise lab_.NoLab("no lab is running (`migrate lab up` starts one)")
    status = _lab_status(settings, current)
    _emit(settings, {"lab": status}, lambda: _lab_text(status))


@_command(lab, "down")
def lab_down(settings: Settings) -> None:
    """Stop every lab process and remove the client configuration the lab wrote."""
    try:
        _, outcome = lab_.stop_lab(report=lambda m: _note(settings, m))
    except lab_.NoLab:
        _note(settings, "no lab is running")
        _emit(settings, {"stopped": {}})
        return
    _emit(settings, {"stopped": outcome},
          lambda: "\n".join(f"{name}: {how}" for name, how in outcome.items()))
    survivors = [name for name, how in outcome.items() if how == "still running"]
    if survivors:
        raise OperationFailed(f"still running: {', '.join(survivors)}", emitted=True)


# --- the edge: errors to one line and an exit code ---------------------------------------------

def _one_line(message: str) -> str:
    return " ".join(message.split()) or "failed"


def _report(settings: Settings, reason: str, message: str, code: int, emitted: bool = False
            ) -> None:
    message = _one_line(message)
    if settings.json and not emitted:
        with contextlib.suppress(OSError, ValueError):
            click.echo(json.dumps({"error": {"reason": reason, "message": message,
                                             "exit_code": code}}))
    click.echo(f"Error: {reason}: {message}", err=True)


def _exit_for(settings: Settings, error: BaseException) -> int:
    """Reports ``error`` (one line on stderr; JSON on stdout with -o json); its exit code."""
    code = exit_code_for(error)
    if isinstance(error, click.ClickException):
        message = error.format_message()
        if isinstance(error, click.UsageError) and error.ctx is not None:
            message += f" (see '{error.ctx.command_path} --help')"
        _report(settings, "USAGE" if code == EXIT_USAGE else "FAILED", message, code)
        return code
    if isinstance(error, (KeyboardInterrupt, click.exceptions.Abort)):
        _report(settings, "INTERRUPTED", "interrupted", EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    if settings.debug:
        traceback.print_exception(error)
    if isinstance(error, (errors.MigrateError, cr_errors.GenodeCrError)):
        _report(settings, errors.reason_of(error), str(error) or type(error).__name__, code,
                getattr(error, "emitted", False))
    elif isinstance(error, OSError):
        _report(settings, "OS_ERROR", str(error), code)
    else:
        _report(settings, "INTERNAL", f"{type(error).__name__}: {error}", code)
    return code


def main(argv: list[str] | None = None) -> NoReturn:
    """The `migrate` command; exits with the code of the table in EXIT_CODES."""
    cli.main(args=argv, prog_name="migrate", obj=Settings())
    raise AssertionError("click's standalone main returns only by SystemExit")


def run(argv: list[str] | None = None) -> int:
    """Runs the command line ``argv`` in this process and returns its exit code."""
    try:
        main(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)


if __name__ == "__main__":
    main()
