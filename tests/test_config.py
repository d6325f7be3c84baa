"""The coordinator's configuration file: what it accepts and how it says no."""

from __future__ import annotations

import pytest

from migrate.config import ConfigError, load_coordinator_config


def write(tmp_path, text: str):
    path = tmp_path / "coordinator.toml"
    path.write_text(text)
    return path


def test_move_defaults_come_from_the_moves_table(tmp_path):
    config = load_coordinator_config(write(tmp_path, (
        '[moves]\nmax_downtime_ms = 1200\non_overshoot = "accept"\n'
        'max_rounds = 3\nlink_grace_ms = 2500\n')))
    d = config.move_defaults
    assert (d.max_downtime_ms, d.on_overshoot, d.max_rounds, d.link_grace_s) == \
        (1200, "accept", 3, 2.5)


def test_without_a_moves_table_the_built_in_defaults_hold(tmp_path):
    assert load_coordinator_config(write(tmp_path, "[coordinator]\n")).move_defaults.max_rounds == 8


@pytest.mark.parametrize("table, complaint", [
    ("[moves]\nmax_downtme_ms = 5\n", "unknown [moves] keys"),
    ('[moves]\non_overshoot = "ignore"\n', "on_overshoot"),
    ("[moves]\nmax_rounds = 0\n", "positive"),
    ('[moves]\nmax_downtime_ms = "soon"\n', "[moves]"),
    ("moves = 3\n", "must be a table"),
])
def test_a_bad_moves_table_is_refused_with_the_key_named(tmp_path, table, complaint):
    with pytest.raises(ConfigError) as error:
        load_coordinator_config(write(tmp_path, table))
    assert complaint in str(error.value) and "coordinator.toml" in str(error.value)


# --- TLS and identities -------------------------------------------------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    from migrate.security.pki import init_lab
    return init_lab(tmp_path_factory.mktemp("certs"), boards=["boardA"])


def test_tls_files_are_relative_to_the_file_and_boards_get_agent_identities(tmp_path, certs):
    from migrate.security import Identity, Role
    (tmp_path / "pki").symlink_to(certs.directory)
    config = load_coordinator_config(write(tmp_path, (
        '[coordinator]\nlisten = "0.0.0.0:7700"\n'
        '[tls]\nca = "pki/ca.crt"\ncert = "pki/coordinator-coordinator.crt"\n'
        'key = "pki/coordinator-coordinator.key"\n'
        '[[boards]]\nname = "boardA"\nagent = "10.0.0.11:7701"\n'
        '[[boards]]\nname = "board_b"\nagent = "10.0.0.12:7701"\nidentity = "agent/b"\n')))
    assert config.tls.identity == Identity(Role.COORDINATOR, "coordinator")
    assert config.tls.cert == tmp_path / "pki" / "coordinator-coordinator.crt"
    assert [b.agent_identity.uri for b in config.boards] == [
        "spiffe://genode-migrate/agent/boardA", "spiffe://genode-migrate/agent/b"]


@pytest.mark.parametrize("text, complaint", [
    ('[coordinator]\nlisten = "0.0.0.0:7700"\n',
     "refusing to serve plaintext gRPC on 0.0.0.0:7700: plaintext is allowed on loopback only"),
    ('[tls]\nplaintext = true\n[[boards]]\nname = "a"\nagent = "10.0.0.1:7701"\n',
     "to reach the agent of a in plaintext on 10.0.0.1:7701"),
    ('[tls]\nplaintext = true\nca = "ca.crt"\n', "plaintext = true and ca: choose one"),
    ('[tls]\nca = "ca.crt"\ncert = "c.crt"\n', "needs ca, cert and key (missing: key)"),
    ('[tls]\nca = "ca.crt"\ncert = "c.crt"\nkey = "c.key"\n', "ca.crt does not exist"),
    ('[tls]\nplaintext = "yes"\n', "plaintext must be true or false"),
    ('[tls]\nplaintext = true\nlocal_identity = "admin/me"\n', "unknown role 'admin'"),
    ('[tls]\nkeyfile = "x"\n', "unknown [tls] keys ['keyfile']"),
    ('[[boards]]\nname = "a"\nagent = "127.0.0.1:1"\nidentity = "spiffe://x/agent/a"\n',
     "trust domain"),
])
def test_bad_tls_settings_are_refused_with_the_reason(tmp_path, text, complaint):
    with pytest.raises(ConfigError) as error:
        load_coordinator_config(write(tmp_path, text))
    assert complaint in str(error.value) and "coordinator.toml" in str(error.value)


def test_with_tls_every_board_needs_an_identity_name(tmp_path, certs):
    tls = (f'[tls]\nca = "{certs.ca}"\ncert = "{certs.directory}/coordinator-coordinator.crt"\n'
           f'key = "{certs.directory}/coordinator-coordinator.key"\n')
    board = '[[boards]]\nname = "board_1"\nagent = "127.0.0.1:1"\n'
    assert load_coordinator_config(write(tmp_path, board)).boards[0].identity is None
    with pytest.raises(ConfigError, match="board 'board_1': its name cannot be an identity"):
        load_coordinator_config(write(tmp_path, tls + board))
    named = load_coordinator_config(write(tmp_path, tls + board + 'identity = "agent/b1"\n'))
    assert named.boards[0].agent_identity.uri == "spiffe://genode-migrate/agent/b1"


def test_a_plaintext_coordinator_names_its_local_callers(tmp_path):
    config = load_coordinator_config(write(tmp_path, (
        '[tls]\nplaintext = true\nlocal_identity = "viewer/local"\n')))
    assert config.tls is None and config.local_identity.uri == \
        "spiffe://genode-migrate/viewer/local"


def test_client_tls_from_the_file_and_from_the_environment(tmp_path, certs, monkeypatch):
    from migrate.config import load_client_config, write_client_config
    from migrate.security import Identity, Role
    for name in ("MIGRATE_COORDINATOR", "MIGRATE_TLS_DIR", "MIGRATE_IDENTITY"):
        monkeypatch.delenv(name, raising=False)
    d = certs.directory
    path = write_client_config("127.0.0.1:7700", tmp_path / "client.toml",
                               tls=(d / "ca.crt", d / "operator-operator.crt",
                                    d / "operator-operator.key"))
    assert load_client_config(path).tls.identity == Identity(Role.OPERATOR, "operator")
    monkeypatch.setenv("MIGRATE_IDENTITY", "viewer/viewer")      # from the same directory
    assert load_client_config(path).tls.identity == Identity(Role.VIEWER, "viewer")
    plain = write_client_config("127.0.0.1:7700", tmp_path / "plain.toml")
    with pytest.raises(ConfigError, match="MIGRATE_IDENTITY needs MIGRATE_TLS_DIR"):
        load_client_config(plain)
    monkeypatch.setenv("MIGRATE_TLS_DIR", str(d))
    assert load_client_config(plain).tls.identity == Identity(Role.VIEWER, "viewer")
    monkeypatch.delenv("MIGRATE_IDENTITY")
    with pytest.raises(ConfigError, match="MIGRATE_TLS_DIR needs MIGRATE_IDENTITY"):
        load_client_config(plain)
    monkeypatch.delenv("MIGRATE_TLS_DIR")
    assert load_client_config(plain).tls is None
