"""Configuration in TOML: the coordinator's (boards, state, listen address, TLS)
and the client's (where the coordinator is, with which certificate).
Environment variables override files:

    MIGRATE_CONFIG       the client configuration file
    MIGRATE_COORDINATOR  the coordinator's address (host:port)
    MIGRATE_TLS_DIR      a directory `migrate certs init` made: the client uses its
                         ca.crt and the certificate and key of MIGRATE_IDENTITY
    MIGRATE_IDENTITY     which of them, e.g. operator/alice or viewer-viewer (alone: from
                         the directory of the configured CA, e.g. the lab's)

The client file defaults to ``$XDG_CONFIG_HOME/genode-migrate/client.toml``,
which ``migrate lab up`` writes. Relative paths in a file are relative to it.

Coordinator file::

    [coordinator]
    listen = "127.0.0.1:7700"
    state_dir = "/var/lib/genode-migrate"
    metrics_listen = "127.0.0.1:9700"   # optional, Prometheus
    retention = 5                       # stored checkpoints kept per component

    [tls]                               # mutual TLS with clients and agents
    ca = "ca.crt"                       # the CA that signs clients and agents
    cert = "coordinator-coordinator.crt"
    key = "coordinator-coordinator.key"
    # or: plaintext = true (loopback only) and local_identity = "operator/local"

    [signing]                           # signed checkpoints (docs/security.md)
    key = "coordinator-coordinator.signing.key"   # signs what the coordinator stores
    trusted = ["."]                     # the agents' *.signing.pub: files or directories

    [moves]                             # defaults for moves that leave them unset
    max_downtime_ms = 300
    on_overshoot = "abort"              # or "accept"
    max_rounds = 8
    link_grace_ms = 10000

    [[boards]]
    name = "boardA"
    agent = "127.0.0.1:7701"
    identity = "agent/boardA"           # the agent's certificate identity (this default)

Without a [tls] table the coordinator serves plaintext, and only on loopback.

Client file::

    [client]
    coordinator = "127.0.0.1:7700"
    coordinator_identity = "coordinator/coordinator"   # the default
    [tls]
    ca = "ca.crt"
    cert = "operator-alice.crt"
    key = "operator-alice.key"
    # or: plaintext = true (loopback only; also the default without [tls])
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

from .errors import ConfigError
from .security.identity import (COORDINATOR, LOCAL_OPERATOR, Identity, InvalidIdentity, Role,
                                parse_identity)
from .security.signing import Signer, TrustedSigners
from .security.tls import TlsConfig, check_plaintext_allowed

if TYPE_CHECKING:
    from .coordinator.model import MoveOptions

__all__ = [
    "BoardConfig",
    "ConfigError",
    "ClientConfig",
    "CoordinatorConfig",
    "certs_home",
    "client_config_path",
    "config_home",
    "load_client_config",
    "load_coordinator_config",
    "state_home",
    "write_client_config",
]

DEFAULT_COORDINATOR = "127.0.0.1:7700"
DEFAULT_RETENTION = 5


@dataclass(frozen=True)
class BoardConfig:
    name: str
    agent: str
    identity: Identity | None = None     # None: agent/<name>

    @property
    def agent_identity(self) -> Identity:
        """The identity the agent's certificate must prove (ConfigError if the board's
        name cannot be an identity name and none was configured)."""
        if self.identity is not None:
            return self.identity
        try:
            return Identity(Role.AGENT, self.name)
        except InvalidIdentity:
            raise ConfigError(f"board {self.name!r}: its name cannot be an identity name; "
                              "give its [[boards]] entry an identity = \"agent/NAME\"") from None


@dataclass
class CoordinatorConfig:
    listen: str = DEFAULT_COORDINATOR
    state_dir: Path = field(default_factory=lambda: state_home() / "coordinator")
    boards: list[BoardConfig] = field(default_factory=list)
    metrics_listen: str | None = None
    retention: int = DEFAULT_RETENTION
    move_defaults: MoveOptions | None = None      # None: the built-in defaults
    #: Mutual TLS with clients and agents; None: plaintext, on loopback only.
    tls: TlsConfig | None = None
    #: Who a plaintext (loopback) caller is.
    local_identity: Identity = LOCAL_OPERATOR
    #: [signing] key: signs the checkpoints the coordinator stores; None: it does not sign.
    signer: Signer | None = None
    #: [signing] trusted: the agents whose checkpoints it accepts; None: it does not check.
    trusted_signers: TrustedSigners | None = None

    def check_plaintext(self) -> None:
        """Without TLS, the listen address and every agent must be on loopback."""
        if self.tls is not None:
            return
        check_plaintext_allowed(self.listen, "to serve plaintext gRPC")
        for board in self.boards:
            check_plaintext_allowed(board.agent, f"to reach the agent of {board.name} in "
                                                 "plaintext")


@dataclass(frozen=True)
class ClientConfig:
    coordinator: str = DEFAULT_COORDINATOR
    path: Path | None = None          # the file it came from, if any
    tls: TlsConfig | None = None      # None: plaintext, to a loopback coordinator only
    coordinator_identity: Identity = COORDINATOR


def config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "genode-migrate"


def certs_home() -> Path:
    """Where `migrate certs init` and `migrate lab up` keep a lab's CA and certificates."""
    return config_home() / "certs"


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


def _identity(path: Path, where: str, value: object) -> Identity:
    try:
        return parse_identity(str(value))
    except InvalidIdentity as error:
        raise ConfigError(f"{path}: {where}: {error}") from None


def _tls(path: Path, section: object, *, extra: tuple[str, ...] = ()
         ) -> tuple[TlsConfig | None, dict]:
    """The [tls] table: (TlsConfig, or None for plaintext; the table)."""
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [tls] must be a table")
    unknown = set(section) - {"ca", "cert", "key", "plaintext", *extra}
    if unknown:
        raise ConfigError(f"{path}: unknown [tls] keys {sorted(unknown)}")
    files = {k: section[k] for k in ("ca", "cert", "key") if k in section}
    if not isinstance(section.get("plaintext", False), bool):
        raise ConfigError(f"{path}: [tls] plaintext must be true or false")
    if section.get("plaintext", False):
        if files:
            raise ConfigError(f"{path}: [tls] has plaintext = true and {', '.join(files)}: "
                              "choose one")
        return None, section
    missing = [k for k in ("ca", "cert", "key") if k not in files]
    if missing:
        raise ConfigError(f"{path}: [tls] needs ca, cert and key (missing: "
                          f"{', '.join(missing)}), or plaintext = true")
    resolved = [path.parent / Path(str(files[k])).expanduser() for k in ("ca", "cert", "key")]
    try:
        return TlsConfig.load(*resolved), section
    except ConfigError as error:
        raise ConfigError(f"{path}: [tls]: {error}") from None


def _signing(path: Path, section: object, tls: TlsConfig | None
             ) -> tuple[Signer | None, TrustedSigners | None]:
    """The [signing] table: key (signs as the [tls] certificate's identity, else as the
    key file's name says) and trusted (a path or a list of them), relative to the file."""
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [signing] must be a table")
    unknown = set(section) - {"key", "trusted"}
    if unknown:
        raise ConfigError(f"{path}: unknown [signing] keys {sorted(unknown)}")
    trusted = section.get("trusted", [])
    if isinstance(trusted, str):
        trusted = [trusted]
    if not isinstance(trusted, list) or not all(isinstance(t, str) for t in trusted):
        raise ConfigError(f"{path}: [signing] trusted must be a path or a list of paths")
    try:
        signer = None
        if "key" in section:
            signer = Signer.from_file(path.parent / Path(str(section["key"])).expanduser(),
                                      tls.identity if tls is not None else None)
        signers = TrustedSigners.load(path.parent / Path(t).expanduser() for t in trusted) \
            if trusted else None
    except ConfigError as error:
        raise ConfigError(f"{path}: [signing]: {error}") from None
    return signer, signers


def load_coordinator_config(path: str | Path) -> CoordinatorConfig:
    path = Path(path)
    data = _read(path)
    section = data.get("coordinator", {})
    boards = []
    for entry in data.get("boards", []):
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("agent"):
            raise ConfigError(f"{path}: every [[boards]] entry needs a name and an agent")
        name = str(entry["name"])
        identity = _identity(path, f"board {name!r}", entry["identity"]) \
            if "identity" in entry else None
        boards.append(BoardConfig(name, str(entry["agent"]), identity))
    names = [b.name for b in boards]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: board names must be unique")
    state_dir = Path(section.get("state_dir") or state_home() / "coordinator")
    if not state_dir.is_absolute():
        state_dir = path.parent / state_dir
    tls, tls_section = None, {}
    if "tls" in data:
        tls, tls_section = _tls(path, data["tls"], extra=("local_identity",))
    if tls is not None and "local_identity" in tls_section:
        raise ConfigError(f"{path}: [tls] local_identity names plaintext callers; "
                          "it goes with plaintext = true")
    local = _identity(path, "[tls] local_identity", tls_section["local_identity"]) \
        if "local_identity" in tls_section else LOCAL_OPERATOR
    signer, trusted = _signing(path, data["signing"], tls) if "signing" in data else (None, None)
    config = CoordinatorConfig(
        listen=str(section.get("listen", DEFAULT_COORDINATOR)),
        state_dir=state_dir,
        boards=boards,
        metrics_listen=section.get("metrics_listen"),
        retention=int(section.get("retention", DEFAULT_RETENTION)),
        move_defaults=_move_defaults(path, data.get("moves", {})),
        tls=tls,
        local_identity=local,
        signer=signer,
        trusted_signers=trusted,
    )
    try:
        config.check_plaintext()
        if tls is not None:
            for board in boards:
                board.agent_identity          # each agent must have one to prove
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    return config


def load_client_config(path: str | Path | None = None) -> ClientConfig:
    """The explicit file, else MIGRATE_CONFIG, else the XDG file when present;
    MIGRATE_COORDINATOR, MIGRATE_TLS_DIR and MIGRATE_IDENTITY override it."""
    file = Path(path) if path else client_config_path()
    coordinator = DEFAULT_COORDINATOR
    server = COORDINATOR
    tls: TlsConfig | None = None
    found: Path | None = None
    if path or file.exists():
        data = _read(file)
        client = data.get("client", {})
        coordinator = str(client.get("coordinator", coordinator))
        if "coordinator_identity" in client:
            server = _identity(file, "[client] coordinator_identity",
                               client["coordinator_identity"])
        if "tls" in data:
            tls, _ = _tls(file, data["tls"])
        found = file
    coordinator = os.environ.get("MIGRATE_COORDINATOR") or coordinator
    tls = _tls_from_environment(tls)
    return ClientConfig(coordinator=coordinator, path=found, tls=tls,
                        coordinator_identity=server)


def _tls_from_environment(configured: TlsConfig | None) -> TlsConfig | None:
    directory = os.environ.get("MIGRATE_TLS_DIR")
    chosen = os.environ.get("MIGRATE_IDENTITY")
    if not directory and not chosen:
        return configured
    if not chosen:
        raise ConfigError("MIGRATE_TLS_DIR needs MIGRATE_IDENTITY, the identity whose "
                          "certificate to use (e.g. operator/operator)")
    try:
        identity = parse_identity(chosen)
    except InvalidIdentity as error:
        raise ConfigError(f"MIGRATE_IDENTITY: {error}") from None
    if not directory:
        if configured is None:
            raise ConfigError("MIGRATE_IDENTITY needs MIGRATE_TLS_DIR (or a client "
                              "configuration with [tls]): where its certificate is")
        directory = str(configured.ca.parent)
    try:
        return TlsConfig.from_directory(Path(directory).expanduser(), identity)
    except ConfigError as error:
        raise ConfigError(f"MIGRATE_TLS_DIR/MIGRATE_IDENTITY: {error}") from None


def write_client_config(coordinator: str, path: Path | None = None, *,
                        tls: tuple[Path, Path, Path] | None = None) -> Path:
    """The client configuration `lab up` writes: the coordinator and (ca, cert, key),
    or plaintext when ``tls`` is None."""
    path = path or client_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# written by `migrate lab up`", "[client]",
             f"coordinator = {_toml_string(coordinator)}", "", "[tls]"]
    if tls is None:
        lines.append("plaintext = true")
    else:
        lines += [f"{name} = {_toml_string(str(Path(file).resolve()))}"
                  for name, file in zip(("ca", "cert", "key"), tls)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml_string(value: str) -> str:
    return json.dumps(value)        # a JSON string is a TOML basic string
