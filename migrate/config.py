"""Configuration in TOML: the coordinator's (boards, state, listen address) and
the client's (where the coordinator is). Environment variables override files:

    MIGRATE_CONFIG       the client configuration file
    MIGRATE_COORDINATOR  the coordinator's address (host:port)

The client file defaults to ``$XDG_CONFIG_HOME/genode-migrate/client.toml``,
which ``migrate lab up`` writes.

Coordinator file::

    [coordinator]
    listen = "127.0.0.1:7700"
    state_dir = "/var/lib/genode-migrate"
    metrics_listen = "127.0.0.1:9700"   # optional, Prometheus
    retention = 5                       # stored checkpoints kept per component

    [moves]                             # defaults for moves that leave them unset
    max_downtime_ms = 300
    on_overshoot = "abort"              # or "accept"
    max_rounds = 8
    link_grace_ms = 10000

    [[boards]]
    name = "boardA"
    agent = "127.0.0.1:7701"
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

from .errors import RequestError

if TYPE_CHECKING:
    from .coordinator.model import MoveOptions

__all__ = [
    "BoardConfig",
    "ClientConfig",
    "CoordinatorConfig",
    "client_config_path",
    "config_home",
    "load_client_config",
    "load_coordinator_config",
    "state_home",
    "write_client_config",
]

DEFAULT_COORDINATOR = "127.0.0.1:7700"
DEFAULT_RETENTION = 5


class ConfigError(RequestError):
    reason = "BAD_CONFIG"


@dataclass(frozen=True)
class BoardConfig:
    name: str
    agent: str


@dataclass
class CoordinatorConfig:
    listen: str = DEFAULT_COORDINATOR
    state_dir: Path = field(default_factory=lambda: state_home() / "coordinator")
    boards: list[BoardConfig] = field(default_factory=list)
    metrics_listen: str | None = None
    retention: int = DEFAULT_RETENTION
    move_defaults: MoveOptions | None = None      # None: the built-in defaults


@dataclass(frozen=True)
class ClientConfig:
    coordinator: str = DEFAULT_COORDINATOR
    path: Path | None = None          # the file it came from, if any


def config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "genode-migrate"


def state_home() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME")
                or Path.home() / ".local" / "state") / "genode-migrate"


def client_config_path() -> Path:
    return Path(os.environ.get("MIGRATE_CONFIG") or config_home() / "client.toml")


def _read(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"no configuration file {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from None


def _move_defaults(path: Path, section: object) -> MoveOptions:
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [moves] must be a table")
    # Imported here: the coordinator package imports this module for BoardConfig.
    from .coordinator.model import MoveOptions

    unknown = set(section) - {"max_downtime_ms", "on_overshoot", "max_rounds", "link_grace_ms"}
    if unknown:
        raise ConfigError(f"{path}: unknown [moves] keys {sorted(unknown)}")
    defaults = MoveOptions()
    try:
        options = MoveOptions(
            max_downtime_ms=int(section.get("max_downtime_ms", defaults.max_downtime_ms)),
            on_overshoot=str(section.get("on_overshoot", defaults.on_overshoot)),
            max_rounds=int(section.get("max_rounds", defaults.max_rounds)),
            link_grace_s=int(section.get("link_grace_ms", defaults.link_grace_s * 1000)) / 1000)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{path}: [moves]: {error}") from None
    if options.on_overshoot not in ("abort", "accept"):
        raise ConfigError(f"{path}: [moves] on_overshoot must be \"abort\" or \"accept\"")
    if min(options.max_downtime_ms, options.max_rounds, options.link_grace_s) <= 0:
        raise ConfigError(f"{path}: [moves] values must be positive")
    return options


def load_coordinator_config(path: str | Path) -> CoordinatorConfig:
    path = Path(path)
    data = _read(path)
    section = data.get("coordinator", {})
    boards = []
    for entry in data.get("boards", []):
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("agent"):
            raise ConfigError(f"{path}: every [[boards]] entry needs a name and an agent")
        boards.append(BoardConfig(str(entry["name"]), str(entry["agent"])))
    names = [b.name for b in boards]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: board names must be unique")
    state_dir = Path(section.get("state_dir") or state_home() / "coordinator")
    if not state_dir.is_absolute():
        state_dir = path.parent / state_dir
    return CoordinatorConfig(
        listen=str(section.get("listen", DEFAULT_COORDINATOR)),
        state_dir=state_dir,
        boards=boards,
        metrics_listen=section.get("metrics_listen"),
        retention=int(section.get("retention", DEFAULT_RETENTION)),
        move_defaults=_move_defaults(path, data.get("moves", {})),
    )


def load_client_config(path: str | Path | None = None) -> ClientConfig:
    """The explicit file, else MIGRATE_CONFIG, else the XDG file when present."""
    file = Path(path) if path else client_config_path()
    coordinator = DEFAULT_COORDINATOR
    found: Path | None = None
    if path or file.exists():
        coordinator = str(_read(file).get("client", {}).get("coordinator", coordinator))
        found = file
    coordinator = os.environ.get("MIGRATE_COORDINATOR") or coordinator
    return ClientConfig(coordinator=coordinator, path=found)


def write_client_config(coordinator: str, path: Path | None = None) -> Path:
    path = path or client_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'# written by `migrate lab up`\n[client]\ncoordinator = "{coordinator}"\n')
    return path
