#!/usr/bin/env python3
"""Builds the QEMU board image: a Debian kernel and a busybox initramfs.

The guest mounts the host's root read-only over 9p, chroots into it and runs
the host's own Python there: ``genode-cr board serve`` with its CR link on
``/dev/ttyS1``. Nothing of the project is copied into the image, so the image
depends only on the kernel package, busybox and this script; which board, which
Python, which checkout and ROMs come from the kernel command line (see
migrate/qemu.py, ``board_append``).

Output (``--out``, default ``$GENODE_MIGRATE_QEMU_DIR`` or
``$XDG_CACHE_HOME/genode-migrate/qemu``)::

    vmlinuz  initrd.img  image.json (kernel version, build time)  stamp (hash of the inputs)
    debs/    the downloaded kernel package, kept so that a rebuild does not fetch it again

The image is rebuilt only when the stamp (kernel package name, busybox's
hash, this script's hash) differs. Needs: apt-get, dpkg, cpio, gzip and
/bin/busybox (Debian: busybox-static). Exits non-zero with a one-line reason.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["default_out_dir", "build", "main", "NINEP_MODULES"]

#: What the guest needs to mount the host over 9p; their dependencies come from modules.dep.
NINEP_MODULES = ("virtio_pci", "9pnet_virtio", "9p")
BUSYBOX = Path("/bin/busybox")
KERNEL_META = "linux-image-amd64"     # the generic flavour: the cloud one has no 9p

# The guest's PID 1. Board settings come from the kernel command line (gcr.*=...);
# if the board server ends, the guest powers off, so QEMU's exit shows it.
INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# A KVM probe (migrate/qemu.py) only asks whether the guest reaches its init at all.
if grep -q "gcr.probe=1" /proc/cmdline; then echo "genode-migrate: probe ok"; poweroff -f; fi
for m in $(cat /modules.order); do
  insmod "/modules/$m.ko" || echo "genode-migrate: insmod $m failed"
done
mkdir -p /run; echo " $(cat /proc/cmdline) " > /run/cmdline
arg() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" < /run/cmdline; }
NAME=$(arg gcr.name); PY=$(arg gcr.python); REPO=$(arg gcr.repo); ROMS=$(arg gcr.roms)
EXTRA=$(arg gcr.args | tr , ' ')
mkdir -p /host
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro hostroot /host; then
  echo "genode-migrate: cannot mount the host root over 9p"; poweroff -f
fi
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
# Writable scratch space, not over /tmp: a checkout or a venv may live there.
mount -t tmpfs scratch /host/run
mkdir -p /host/run/genode-migrate
if [ -z "$NAME" ] || [ -z "$PY" ]; then
  echo "genode-migrate: gcr.name= and gcr.python= are required on the kernel command line"
  poweroff -f
fi
echo "genode-migrate: starting board $NAME"
chroot /host /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/run/genode-migrate \
  TMPDIR=/run/genode-migrate \
  PYTHONPATH="$REPO" GENODE_CR_ROM_DIR="$ROMS" PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
  "$PY" -m genode_cr.cli board serve --name "$NAME" --uart /dev/ttyS1 $EXTRA
echo "genode-migrate: board server exited with status $?"
poweroff -f
"""


def default_out_dir() -> Path:
    if explicit := os.environ.get("GENODE_MIGRATE_QEMU_DIR"):
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "genode-migrate" / "qemu"


class BuildError(Exception):
    pass


def _run(argv: list[str], **kwargs) -> str:
    try:
        done = subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)
    except FileNotFoundError:
        raise BuildError(f"{argv[0]} is missing") from None
    except subprocess.CalledProcessError as error:
        raise BuildError(f"{' '.join(argv)} failed: {error.stderr.strip()[-500:]}") from None
    return done.stdout


def kernel_package() -> str:
    """The versioned package the generic metapackage points at (linux-image-6.1.0-N-amd64)."""
    depends = re.findall(r"Depends: (linux-image-\S+)", _run(["apt-cache", "depends", KERNEL_META]))
    if not depends:
        raise BuildError(f"apt-cache knows no dependency of {KERNEL_META}; run apt-get update")
    return depends[0]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def input_stamp(package: str) -> str:
    if not BUSYBOX.exists():
        raise BuildError(f"{BUSYBOX} is missing (Debian: apt-get install busybox-static)")
    parts = [package, _sha256(BUSYBOX), _sha256(Path(__file__))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _fetch_kernel(package: str, debs: Path) -> Path:
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        _run(["apt-get", "download", package], cwd=debs)
        found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        raise BuildError(f"apt-get download {package} left no .deb in {debs}")
    for stale in debs.glob("*.deb"):
        if stale != found[-1]:
            stale.unlink()
    return found[-1]


def _module_name(path: Path) -> str:
    return re.sub(r"\.ko(\.[gx]z|\.zst)?$", "", path.name).replace("-", "_")


def module_order(modules_dir: Path, wanted: tuple[str, ...]) -> list[Path]:
    """The .ko files for ``wanted`` and their dependencies, each after what it depends on.

    An extracted package has no modules.dep (depmod writes it on install), so the
    dependencies are read from each module's .modinfo strings ("depends=a,b").
    """
    by_name = {_module_name(p): p for p in modules_dir.rglob("*.ko*")}
    order: list[Path] = []

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name not in by_name:
            raise BuildError(f"module {name} is not in {modules_dir} (built in?)")
        path = by_name[name]
        if path in order or name in chain:
            return
        found = re.search(rb"\0depends=([^\0]*)\0", b"\0" + _module_bytes(path))
        for need in filter(None, (found[1].decode() if found else "").split(",")):
            visit(need.replace("-", "_"), chain + (name,))
        order.append(path)

    for name in wanted:
        visit(name, ())
    return order


def _module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".xz":
        return lzma.decompress(data)
    if path.suffix == ".gz":
        return gzip.decompress(data)
    if path.suffix == ".zst":
        raise BuildError(f"{path}: zstd-compressed modules are not supported")
    return data


def _initramfs(root: Path, modules: list[Path], out: Path) -> None:
    for sub in ("bin", "proc", "sys", "dev", "modules", "run"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    (root / "bin" / "sh").symlink_to("busybox")
    names = []
    for module in modules:
        name = _module_name(module)
        (root / "modules" / f"{name}.ko").write_bytes(_module_bytes(module))
        names.append(name)
    (root / "modules.order").write_text("\n".join(names) + "\n")
    init = root / "init"
    init.write_text(INIT)
    init.chmod(0o755)
    files = _run(["find", ".", "-print0"], cwd=root)
    cpio = subprocess.run(["cpio", "--quiet", "-o", "-0", "-H", "newc", "--owner=0:0"],
                          cwd=root, input=files.encode(), capture_output=True)
    if cpio.returncode:
        raise BuildError(f"cpio failed: {cpio.stderr.decode(errors='replace')[-500:]}")
    with gzip.open(out, "wb", compresslevel=6) as archive:
        archive.write(cpio.stdout)


def build(out: Path, *, force: bool = False, log=print) -> Path:
    """Brings ``out`` up to date; returns it. Quick when nothing changed."""
    package = kernel_package()
    stamp = input_stamp(package)
    stamp_file = out / "stamp"
    if not force and stamp_file.exists() and stamp_file.read_text().strip() == stamp \
            and (out / "vmlinuz").exists() and (out / "initrd.img").exists():
        log(f"qemu image in {out} is up to date")
        return out
    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    deb = _fetch_kernel(package, out / "debs")
    with tempfile.TemporaryDirectory(prefix="qemu-image-", dir=out) as scratch:
        tree, root = Path(scratch) / "kernel", Path(scratch) / "initramfs"
        _run(["dpkg", "-x", str(deb), str(tree)])
        kernels = sorted((tree / "boot").glob("vmlinuz-*"))
        if not kernels:
            raise BuildError(f"{deb.name} holds no /boot/vmlinuz-*")
        version = kernels[-1].name.removeprefix("vmlinuz-")
        modules = module_order(tree / "lib" / "modules" / version, NINEP_MODULES)
        _initramfs(root, modules, Path(scratch) / "initrd.img")
        stamp_file.unlink(missing_ok=True)
        shutil.copy2(kernels[-1], out / "vmlinuz")
        os.replace(Path(scratch) / "initrd.img", out / "initrd.img")
    seconds = time.monotonic() - started
    (out / "image.json").write_text(json.dumps({
        "kernel": version, "package": deb.name, "modules": [m.name for m in modules],
        "build_seconds": round(seconds, 1)}, indent=2) + "\n")
    stamp_file.write_text(stamp + "\n")
    log(f"qemu image built in {out} ({version}, {seconds:.1f} s)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory [default: $GENODE_MIGRATE_QEMU_DIR or "
                             "$XDG_CACHE_HOME/genode-migrate/qemu]")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    try:
        build(args.out or default_out_dir(), force=args.force)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
