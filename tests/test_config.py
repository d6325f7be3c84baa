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
