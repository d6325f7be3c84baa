"""Checkpoint and restore throughput of the emulated board, against a plain copy.

Measures, in one run on this machine:

- full checkpoints of kvstore grown to 8 MiB (bytes of RAM the checkpoint
  covers per second): the first one of the component, and one taken after a
  kvstore step;
- an incremental checkpoint after one kvstore step (the fraction of pages it
  carries is measured and printed);
- verifying the full checkpoint, and restoring it on a fresh board;
- the baselines, on the same number of bytes, in the same process: a
  ctypes.memmove, a bytes() copy, and a memmove followed by SHA-256 over every
  4 KiB page (what hashing costs: checkpoints hash page by page).

Every figure is the median of several repetitions; ratios are against the
baselines of the same run.

The first checkpoint of a component write-protects all of its RAM (one
Unicorn region per tracking unit); later ones re-protect only the units
written since. The first is therefore measured on its own, on the copies the
restore measurement leaves behind (a restored component has never been
checkpointed on its new board).

    python bench/board.py [--quick] [--tracking-unit-pages N]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import hashlib
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from genode_cr.checkpoint import PAGE_SIZE, Checkpoint  # noqa: E402
from genode_cr.emu import Board  # noqa: E402
from genode_cr.emu.board import DEFAULT_TRACKING_UNIT_PAGES  # noqa: E402
from genode_cr.v1 import checkpoint_pb2 as pb  # noqa: E402

MIB = 1 << 20
CHUNK = 256 * 1024                  # kvstore grows its table by this much per step
TABLE = 8 * MIB                     # the RAM quota stops the table here
QUOTA = TABLE + CHUNK // 2          # room for data and stack, not for a 33rd chunk
COMPONENT = "kvstore"


# --- timing ----------------------------------------------------------------------

def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """Runs ``fn`` once with the garbage collector off; returns (seconds, result)."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed, result


def per_call(fn: Callable[[], object], samples: int, min_sample: float = 0.02) -> list[float]:
    """Seconds per call of a cheap, repeatable ``fn``; each sample loops long
    enough to stay well above the timer's resolution."""
    single, _ = timed(fn)
    loops = max(1, int(min_sample / max(single, 1e-9)))
    result = []
    for _ in range(samples):
        elapsed, _ = timed(lambda: [fn() for _ in range(loops)])
        result.append(elapsed / loops)
    return result


@dataclass
class Row:
    name: str
    ram_bytes: int          # RAM the operation covers
    data_bytes: int         # page contents carried, written or copied
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


# --- the board ---------------------------------------------------------------------

def steps(board: Board) -> int:
    return sum(1 for line in board.log(COMPONENT) if line.startswith("step "))


def errors(board: Board) -> list[str]:
    return [line for line in board.log(COMPONENT) if "Error" in line or "[core]" in line]


def run_one_step(board: Board) -> None:
    """Runs until kvstore has finished its next step. It then sleeps 100 ms,
    so the board stops between two steps' writes."""
    done = steps(board)
    board.run_until(lambda: steps(board) > done, timeout=5)


def ram_pages(checkpoint: Checkpoint) -> int:
    return sum(len(ds.pages) for ds in checkpoint.manifest.dataspaces
               if ds.kind == pb.DATASPACE_RAM)


# --- the baselines -------------------------------------------------------------------

def measure_baselines(nbytes: int, samples: int) -> dict[str, Row]:
    src = bytearray((i * 131 + 7) & 0xFF for i in range(PAGE_SIZE)) * (nbytes // PAGE_SIZE)
    dst = (ctypes.c_char * nbytes)()
    src_addr = ctypes.addressof((ctypes.c_char * nbytes).from_buffer(src))
    dst_view = memoryview(dst).cast("B")

    def memmove() -> None:
        ctypes.memmove(dst, src_addr, nbytes)

    def copy_bytes() -> None:
        bytes(src)

    def memmove_sha256() -> None:
        ctypes.memmove(dst, src_addr, nbytes)
        for offset in range(0, nbytes, PAGE_SIZE):
            hashlib.sha256(dst_view[offset:offset + PAGE_SIZE]).digest()

    return {
        "memmove": Row("baseline: ctypes.memmove", nbytes, nbytes, per_call(memmove, samples)),
        "bytes": Row("baseline: bytes(bytearray)", nbytes, nbytes, per_call(copy_bytes, samples)),
        "sha": Row("baseline: memmove + SHA-256/page", nbytes, nbytes,
                   per_call(memmove_sha256, samples)),
    }


# --- the run -----------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 repetitions instead of 7")
    parser.add_argument("--tracking-unit-pages", type=int, default=DEFAULT_TRACKING_UNIT_PAGES,
                        metavar="N", help="dirty-tracking granularity of every board "
                        f"[default: {DEFAULT_TRACKING_UNIT_PAGES}]")
    args = parser.parse_args(argv)
    unit = args.tracking_unit_pages
    reps = 3 if args.quick else 7
    began = time.perf_counter()

    # Grow kvstore until its RAM quota stops the table at 8 MiB; from then on
    # every step writes the same number of random words into a table of constant size.
    source = Board("bench-source", tracking_unit_pages=unit)
    source.cr.start(COMPONENT, ram_quota=QUOTA)
    source.run_until(lambda: any(line.startswith("kvstore: table full")
                                 for line in source.log(COMPONENT)), timeout=60)
    run_one_step(source)
    source.cr.checkpoint(COMPONENT)      # the first one; measured below on restored copies

    full_times, fulls = [], []
    for _ in range(reps):
        run_one_step(source)
        seconds, checkpoint = timed(lambda: source.cr.checkpoint(COMPONENT))
        full_times.append(seconds)
        fulls.append(checkpoint)
    full = fulls[-1]
    pages_total = ram_pages(full)
    ram_bytes = pages_total * PAGE_SIZE

    chain = [full]
    inc_times, carried = [], []
    for _ in range(reps):
        run_one_step(source)
        seconds, checkpoint = timed(lambda: source.cr.checkpoint(COMPONENT, since=chain[-1]))
        inc_times.append(seconds)
        carried.append(len(checkpoint.pages))
        chain.append(checkpoint)
    dirty_fraction = statistics.median(carried) / pages_total

    verify_times = [timed(full.verify)[0] for _ in range(reps)]

    restore_times, first_times, reports = [], [], []
    for i in range(reps):
        target = Board(f"bench-target-{i}", tracking_unit_pages=unit)
        seconds, report = timed(lambda: target.cr.restore(full))
        restore_times.append(seconds)
        reports.append(report)
        seconds, _ = timed(lambda: target.cr.checkpoint(COMPONENT))
        first_times.append(seconds)
        target.cr.kill(COMPONENT)

    # Not timed: the chain restores, and the copy computes the same next step.
    check = Board("bench-check", tracking_unit_pages=unit)
    check.cr.restore(chain)
    run_one_step(source)
    run_one_step(check)
    expected = source.log(COMPONENT)[-1]
    restored_ok = check.log(COMPONENT)[-1] == expected and not errors(check) and not errors(source)

    baselines = measure_baselines(ram_bytes, reps)

    full_data = len(full.pages) * PAGE_SIZE
    rows = [
        *baselines.values(),
        Row("full checkpoint, first", ram_bytes, full_data, first_times),
        Row("full checkpoint, after 1 step", ram_bytes, full_data, full_times),
        Row("incremental ckpt, after 1 step", ram_bytes,
            int(statistics.median(carried)) * PAGE_SIZE, inc_times),
        Row("verify full checkpoint", ram_bytes, full_data, verify_times),
        Row("restore full checkpoint", ram_bytes, reports[-1].bytes_written, restore_times),
    ]
    print_table(rows, baselines)

    report = reports[-1]
    print()
    print(f"component    kvstore, {pages_total} RAM pages = {ram_bytes / MIB:.2f} MiB covered by "
          f"every checkpoint; a full one carries {len(full.pages)} non-zero pages "
          f"({full_data / MIB:.2f} MiB); dirty tracking in units of {unit} page(s)")
    print(f"incremental  one kvstore step between checkpoints; "
          f"pages carried {carried}; dirty fraction = median carried / total = "
          f"{dirty_fraction:.2%}")
    print(f"restore      verifies, then writes {report.pages_written} pages into "
          f"{report.dataspaces} dataspaces and installs {report.caps_installed} caps; the chain "
          f"of {len(chain)} restored on another board computed "
          f"{'the same next step' if restored_ok else 'A DIFFERENT NEXT STEP'} ({expected})")
    print(f"ratios       operation time / baseline time for the same number of bytes, baselines "
          f"measured in this run; medians of {reps}")
    print(f"machine      Python {platform.python_version()} on {platform.machine()}; "
          f"total {time.perf_counter() - began:.1f} s")
    return 0 if restored_ok else 1


def print_table(rows: list[Row], baselines: dict[str, Row]) -> None:
    memmove, sha = baselines["memmove"], baselines["sha"]
    header = (f"{'operation':<33} {'RAM MiB':>7} {'data MiB':>8} {'median ms':>10} "
              f"{'min..max ms':>16} {'RAM MiB/s':>9} {'x memmove':>9} {'x copy+sha':>10}")
    print(header)
    print("-" * len(header))
    for row in rows:
        # The baselines ran on exactly the RAM size; scale keeps the ratio a
        # ratio of times for the same number of bytes should a row differ.
        scale = row.ram_bytes / memmove.ram_bytes
        lo, hi = min(row.seconds) * 1e3, max(row.seconds) * 1e3
        print(f"{row.name:<33} {row.ram_bytes / MIB:>7.2f} {row.data_bytes / MIB:>8.2f} "
              f"{row.median * 1e3:>10.2f} {f'{lo:.2f}..{hi:.2f}':>16} "
              f"{row.ram_bytes / MIB / row.median:>9.0f} "
              f"{row.median / (memmove.median * scale):>8.1f}x "
              f"{row.median / (sha.median * scale):>9.2f}x")


if __name__ == "__main__":
    sys.exit(main())
