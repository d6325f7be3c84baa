#!/usr/bin/env python3
"""Generate the Python protobuf + gRPC code from proto/ (the one way to do it).

For every ``proto/**/*.proto`` this runs grpc_tools.protoc with

    -I proto --python_out=. --pyi_out=. --grpc_python_out=.

so ``proto/genode_cr/v1/x.proto`` (proto package ``genode_cr.v1``) becomes
``genode_cr/v1/x_pb2.py``, ``x_pb2.pyi`` and ``x_pb2_grpc.py``. Every directory that
receives generated code gets an ``__init__.py`` when it has none (an existing one is left
alone). Generated files that no .proto produces any more are removed. Nothing generated is
ever edited by hand: change the .proto and run ``make proto``.

``--check`` regenerates into a temporary directory and compares with the files in the
output tree; it exits 1 and lists stale, missing and extra files when they differ.

``--proto-dir`` and ``--out-dir`` default to ``<repo>/proto`` and ``<repo>``.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
INIT_TEXT = '"""Generated from proto/ by scripts/gen_proto.py: do not edit."""\n'

# Directories never searched for generated files (virtualenvs, build output, VCS, caches).
SKIP_DIRS = {"build", "dist", "node_modules", "site-packages", "__pycache__"}


def find_protos(proto_dir: Path) -> list[Path]:
    """All .proto files below proto_dir, relative to it, sorted."""
    return sorted(p.relative_to(proto_dir) for p in proto_dir.rglob("*.proto") if p.is_file())


def well_known_include() -> str:
    """The include directory with google/protobuf/*.proto shipped by grpcio-tools."""
    import grpc_tools  # noqa: PLC0415 (import here to give a clear error when missing)

    return str(Path(grpc_tools.__file__).resolve().parent / "_proto")


def run_protoc(proto_dir: Path, protos: list[Path], out_dir: Path) -> None:
    """Generate code for protos (relative to proto_dir) into out_dir."""
    out = str(out_dir.resolve())
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        "-I",
        ".",
        "-I",
        well_known_include(),
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *[p.as_posix() for p in protos],
    ]
    # Run inside proto_dir so that '-I .' equals '-I proto' and the names recorded in the
    # generated code ("genode_cr/v1/x.proto") do not depend on where the tree lives.
    res = subprocess.run(cmd, cwd=proto_dir, capture_output=True, text=True)
    if res.returncode != 0:
        sys.stderr.write(res.stdout + res.stderr)
        raise SystemExit(f"gen_proto: protoc failed (exit {res.returncode})")


def package_dirs(files: set[Path]) -> set[Path]:
    """Every directory (relative, excluding '.') that holds one of files, and its parents."""
    dirs: set[Path] = set()
    for f in files:
        for parent in f.parents:
            if parent != Path("."):
                dirs.add(parent)
    return dirs


def generate(proto_dir: Path, protos: list[Path], dest: Path) -> set[Path]:
    """Generate into the empty directory dest; return the generated files (relative),
    __init__.py files included."""
    run_protoc(proto_dir, protos, dest)
    files = {p.relative_to(dest) for p in dest.rglob("*") if p.is_file()}
    for d in package_dirs(files):
        init = d / "__init__.py"
        if init not in files:
            (dest / init).write_text(INIT_TEXT)
            files.add(init)
    return files


def is_generated_name(path: Path) -> bool:
    return path.name.endswith(GENERATED_SUFFIXES)


def looks_generated(path: Path) -> bool:
    """A file with a generated name that protoc wrote: .py files carry protoc's or the gRPC
    plugin's "DO NOT EDIT!" header; a .pyi stub counts when its _pb2.py does, or is gone."""
    if path.name.endswith(".pyi"):
        module = path.with_suffix(".py")
        return not module.exists() or looks_generated(module)
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            head = "".join(f.readline() for _ in range(3))
    except OSError:
        return False
    return "DO NOT EDIT!" in head


def existing_generated(out_dir: Path) -> set[Path]:
    """Files in out_dir that protoc generated (see looks_generated), skipping virtualenvs,
    hidden dirs, build output and caches."""
    found: set[Path] = set()
    for root, dirs, names in os.walk(out_dir):
        rootp = Path(root)
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".")
            and d not in SKIP_DIRS
            and not d.endswith(".egg-info")
            and not (rootp / d / "pyvenv.cfg").exists()
        ]
        for n in names:
            p = rootp / n
            if is_generated_name(p) and looks_generated(p):
                found.add(p.relative_to(out_dir))
    return found


def compare(fresh_dir: Path, fresh: set[Path], out_dir: Path, proto_dir: Path):
    """Return (stale, missing, extra) lists of paths relative to out_dir."""
    stale, missing = [], []
    for rel in sorted(fresh):
        target = out_dir / rel
        if not target.is_file():
            missing.append(rel)
        elif rel.name == "__init__.py":
            continue  # only its existence matters: a package __init__ may be hand-written
        elif not filecmp.cmp(fresh_dir / rel, target, shallow=False):
            stale.append(rel)
    extra = sorted(existing_generated(out_dir) - fresh - _inside(out_dir, proto_dir))
    return stale, missing, extra


def _inside(out_dir: Path, proto_dir: Path) -> set[Path]:
    """Generated-looking files inside proto_dir (when it lies in out_dir): not ours."""
    try:
        rel = proto_dir.resolve().relative_to(out_dir.resolve())
    except ValueError:
        return set()
    return {rel / p.relative_to(proto_dir) for p in proto_dir.rglob("*") if is_generated_name(p)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proto-dir", type=Path, default=REPO / "proto",
                    help="root of the .proto tree (default: %(default)s)")
    ap.add_argument("--out-dir", type=Path, default=REPO,
                    help="where generated packages go (default: %(default)s)")
    ap.add_argument("--check", action="store_true",
                    help="do not write; exit 1 when the generated files are stale")
    args = ap.parse_args(argv)
    proto_dir: Path = args.proto_dir.resolve()
    out_dir: Path = args.out_dir.resolve()

    protos = find_protos(proto_dir) if proto_dir.is_dir() else []
    if protos:
        try:
            import grpc_tools  # noqa: F401, PLC0415
        except ImportError:
            print("gen_proto: grpcio-tools is missing: run `make venv` "
                  "(pip install -e '.[dev]')", file=sys.stderr)
            return 2

    with tempfile.TemporaryDirectory(prefix="gen_proto.") as tmp:
        fresh_dir = Path(tmp)
        fresh = generate(proto_dir, protos, fresh_dir) if protos else set()
        stale, missing, extra = compare(fresh_dir, fresh, out_dir, proto_dir)

        if args.check:
            if not (stale or missing or extra):
                print(f"gen_proto: {len(protos)} .proto file(s), generated code up to date")
                return 0
            for label, paths in (("stale", stale), ("missing", missing), ("extra", extra)):
                for p in paths:
                    print(f"{label}: {p.as_posix()}")
            print("gen_proto: generated code is out of date: run `make proto` "
                  "(python scripts/gen_proto.py) and commit the result", file=sys.stderr)
            return 1

        for rel in stale + missing:
            (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(fresh_dir / rel, out_dir / rel)
            print(f"wrote {rel.as_posix()}")
        for rel in extra:
            (out_dir / rel).unlink()
            print(f"removed {rel.as_posix()}")
        if not (stale or missing or extra):
            print(f"gen_proto: {len(protos)} .proto file(s), nothing to do")
        return 0


if __name__ == "__main__":
    sys.exit(main())
