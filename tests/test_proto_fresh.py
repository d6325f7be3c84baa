"""The generated protobuf/gRPC code in the tree matches proto/ (scripts/gen_proto.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GEN = REPO / "scripts" / "gen_proto.py"


def run_gen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GEN), *args], capture_output=True, text=True, timeout=120
    )


def test_generated_code_is_fresh() -> None:
    res = run_gen("--check")
    assert res.returncode == 0, (
        "generated protobuf code is stale; run `make proto` and commit the result\n"
        + res.stdout
        + res.stderr
    )


def test_check_detects_stale_missing_and_extra(tmp_path: Path) -> None:
    proto = tmp_path / "proto" / "pkg" / "v1"
    proto.mkdir(parents=True)
    out = tmp_path / "out"
    out.mkdir()
    dirs = ("--proto-dir", str(tmp_path / "proto"), "--out-dir", str(out))
    (proto / "a.proto").write_text(textwrap.dedent("""\
        syntax = "proto3";
        package pkg.v1;
        message A { int32 x = 1; }
        service S { rpc Get(A) returns (A); }
        """))
    (proto / "b.proto").write_text('syntax = "proto3";\npackage pkg.v1;\nmessage B {}\n')

    res = run_gen(*dirs, "--check")
    assert res.returncode == 1
    assert "missing: pkg/v1/a_pb2.py" in res.stdout
    assert "missing: pkg/v1/__init__.py" in res.stdout

    assert run_gen(*dirs).returncode == 0
    for name in ("__init__.py", "v1/__init__.py", "v1/a_pb2.py", "v1/a_pb2.pyi",
                 "v1/a_pb2_grpc.py", "v1/b_pb2.py"):
        assert (out / "pkg" / name).is_file(), name
    assert run_gen(*dirs, "--check").returncode == 0

    (proto / "a.proto").write_text((proto / "a.proto").read_text().replace(
        "int32 x = 1;", "int32 x = 1; string y = 2;"))
    (proto / "b.proto").unlink()
    res = run_gen(*dirs, "--check")
    assert res.returncode == 1
    assert "stale: pkg/v1/a_pb2.py" in res.stdout
    assert "extra: pkg/v1/b_pb2.py" in res.stdout

    assert run_gen(*dirs).returncode == 0
    assert not (out / "pkg" / "v1" / "b_pb2.py").exists()
    assert run_gen(*dirs, "--check").returncode == 0
