"""`migrate lab up --qemu`: a lab whose boards are QEMU virtual machines, driven
with the CLI as a person would, and torn down without leaving a machine behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import wait_for

pytestmark = [pytest.mark.qemu, pytest.mark.slow]


def test_a_lab_of_virtual_machines_moves_a_counter(tmp_path, qemu_image):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATE_")}
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), XDG_CONFIG_HOME=str(tmp_path / "config"))

    def migrate(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "migrate.cli", *args], env=env,
                              capture_output=True, text=True, timeout=timeout)

    status: dict = {"boards": []}
    up = migrate("lab", "up", "--qemu", "--boards", "2", timeout=400)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        status = json.loads(migrate("-o", "json", "lab", "status").stdout)["lab"]
        assert status["qemu"] and [b["kind"] for b in status["boards"]] == ["qemu", "qemu"]
        wait_for(lambda: all(b["vm_state"] == "running" and b["health"] == "SERVING"
                             for b in json.loads(migrate("-o", "json", "lab", "status")
                                                 .stdout)["lab"]["boards"]),
                 120, "both virtual machines running and serving")
        assert migrate("start", "counter", "--on", "boardA").returncode == 0
        moved = migrate("-o", "json", "move", "counter", "--from", "boardA", "--to", "boardB",
                        "--max-downtime", "5000")
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert json.loads(moved.stdout)["move"]["phase"] == "MOVE_PHASE_DONE"
        listed = migrate("-o", "json", "ps")
        ps = json.loads(listed.stdout)
        assert "components" in ps, listed.stdout + listed.stderr
        assert [(c["name"], c["board"]) for c in ps["components"]] == [("counter", "boardB")]
    finally:
        down = migrate("lab", "down", timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    pids = [b["board"]["pid"] for b in status["boards"]]
    wait_for(lambda: not any(os.path.exists(f"/proc/{pid}") and
                             open(f"/proc/{pid}/stat").read().split()[2] != "Z"
                             for pid in pids), 60, "the machines' launchers to be gone")
