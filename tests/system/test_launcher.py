"""The QEMU launcher on its own: its wiring, its errors, and that nothing outlives it."""

from __future__ import annotations

import pytest

from migrate.qemu import QemuBoard, QemuLaunchError

from .conftest import wait_for

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

#: Our image's init answers this and powers off at once (migrate/qemu.py's KVM probe).
PROBE = "console=ttyS0 panic=-1 gcr.probe=1"


def test_a_users_own_kernel_boots_with_the_same_serial_and_qmp_wiring(qemu_image, tmp_path):
    with QemuBoard("own", kernel=qemu_image / "vmlinuz", initrd=qemu_image / "initrd.img",
                   append=PROBE, log_dir=tmp_path, kvm="off") as vm:
        assert vm.uart_url.startswith("socket://127.0.0.1:")
        assert int(vm.uart_url.rpartition(":")[2]) > 0
        assert "-virtfs" not in vm.argv           # a user's system gets no share of ours
        # The guest powers itself off; with -no-reboot, QEMU ends with it.
        wait_for(lambda: not vm.alive(), 120, "the probe guest to power off")
        assert vm.process.returncode == 0
        assert vm.status() == "exited"
    assert "genode-migrate: probe ok" in vm.console_log.read_text(errors="replace")


def test_leaving_the_context_ends_a_paused_machine(qemu_image, tmp_path):
    with QemuBoard("paused", qemu_image, append=PROBE, log_dir=tmp_path,
                   kvm="off") as vm:
        vm.pause()
        assert vm.status() == "paused"
        process = vm.process
    assert process.poll() == 0          # QMP quit works on a paused machine: no kill needed
    assert vm.status() == "exited"


def test_kill_is_a_crash_and_the_exit_still_cleans_up(qemu_image, tmp_path):
    with QemuBoard("crash", qemu_image, append=PROBE, log_dir=tmp_path, kvm="off") as vm:
        vm.pause()
        assert vm.kill() == -9
        assert vm.status() == "exited"
    assert vm.process.returncode == -9


def test_qemu_refusing_its_options_is_a_launch_error_with_the_details(qemu_image, tmp_path):
    with pytest.raises(QemuLaunchError) as failed:
        QemuBoard("bad", qemu_image, memory="lots", log_dir=tmp_path, kvm="off").start()
    error = failed.value
    assert error.returncode not in (None, 0)
    assert "-m lots" in " ".join(error.argv)
    assert "lots" in error.log_tail
    assert "exit code" in str(error) and "qemu-system-x86_64" in str(error)


def test_a_board_that_cannot_start_in_the_guest_reports_the_console(qemu_image, tmp_path):
    vm = QemuBoard("noboard", qemu_image, log_dir=tmp_path, kvm="off",
                   append="console=ttyS0 panic=-1 gcr.name=noboard gcr.python=/nonexistent/py")
    with vm, pytest.raises(QemuLaunchError) as failed:
        vm.wait_ready(120)
    assert "board server exited" in failed.value.console_tail
    assert not vm.alive()


def test_a_missing_kernel_is_named(qemu_image, tmp_path):
    with pytest.raises(QemuLaunchError) as failed:
        QemuBoard("nokernel", tmp_path / "empty", log_dir=tmp_path, kvm="off").start()
    assert "vmlinuz" in str(failed.value) and "make qemu-image" in str(failed.value)
