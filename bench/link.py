"""Goodput of the board link against the line rate of a paced UART.

A board sends checkpoint pages (4 KiB messages) to its agent over loopback TCP,
both ends paced like a UART at --baud.  Goodput is page bytes delivered per
second; it is printed as a ratio to the line rate that the same pacer reaches
writing raw bytes for the same duration in the same run, so the figure says
how much of the line the protocol leaves to the pages, whatever the machine.

Two loads:
  incompressible  random pages, sent as they are;
  typical         half zero pages, a quarter text-like, a quarter random,
                  each compressed with zstd level 3 before sending, as the board
                  will; its ratio can exceed 1 because the line carries less.

Run:  .venv/bin/python bench/link.py            (about 55 s)
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from genode_cr.link import BlockingLink, PacedPort, SocketPort, line_rate  # noqa: E402

PAGE = 4096
WORDS = b"cap badge rom ram dataspace session parent child signal region map attach pd cpu".split()


def incompressible_pages(n: int) -> list[bytes]:
    return [os.urandom(PAGE) for _ in range(n)]


def typical_pages(n: int, rng: random.Random) -> list[bytes]:
    pages = []
    for i in range(n):
        kind = i % 4
        if kind in (0, 1):
            pages.append(bytes(PAGE))
        elif kind == 2:
            text = b" ".join(rng.choice(WORDS) for _ in range(PAGE // 4))
            pages.append(text[:PAGE])
        else:
            pages.append(rng.randbytes(PAGE))
    rng.shuffle(pages)
    return pages


@dataclass
class Result:
    name: str
    pages: int
    page_bytes: int
    wire_payload: int
    seconds: float
    retransmitted: int
    line_rate: float = 0.0

    @property
    def goodput(self) -> float:
        return self.page_bytes / self.seconds


def connected_pair() -> tuple[socket.socket, str]:
    server = socket.create_server(("127.0.0.1", 0))
    return server, f"socket://127.0.0.1:{server.getsockname()[1]}"


def transfer(name: str, pages: list[bytes], baud: int, compress: bool, options: dict) -> Result:
    server, url = connected_pair()
    accepted: list[socket.socket] = []
    acceptor = threading.Thread(target=lambda: accepted.append(server.accept()[0]))
    acceptor.start()
    # The agent's open() returns only after the handshake, for which the board
    # must run on the accepted socket: open it on a thread.
    opener: list[BlockingLink] = []
    agent_thread = threading.Thread(
        target=lambda: opener.append(BlockingLink.open(url, baud=baud, pace=True, connect_timeout=10, **options))
    )
    agent_thread.start()
    acceptor.join()
    board = BlockingLink(PacedPort(SocketPort(accepted[0]), baud), **options)
    agent_thread.join()
    agent = opener[0]
    server.close()

    compressor = zstandard.ZstdCompressor(level=3)
    decompressor = zstandard.ZstdDecompressor()
    wire = [0]

    def board_sends() -> None:
        for page in pages:
            message = compressor.compress(page) if compress else page
            wire[0] += len(message)
            board.send(message)

    start = time.monotonic()
    sender = threading.Thread(target=board_sends)
    sender.start()
    for page in pages:
        message = agent.receive(timeout=30)
        got = decompressor.decompress(message, max_output_size=PAGE) if compress else message
        if got != page:
            raise SystemExit(f"{name}: a page arrived damaged")
    seconds = time.monotonic() - start
    sender.join()
    result = Result(name, len(pages), len(pages) * PAGE, wire[0], seconds, board.stats.frames_retransmitted)
    agent.close()
    board.close()
    return result


def raw_line_rate(baud: int, seconds: float) -> float:
    """Bytes per second the pacer lets through when writing raw bytes for ``seconds``."""
    server, _ = connected_pair()
    sink_conn: list[socket.socket] = []

    def sink() -> None:
        conn = server.accept()[0]
        sink_conn.append(conn)
        while conn.recv(65536):
            pass

    drain = threading.Thread(target=sink)
    drain.start()
    port = PacedPort(SocketPort(socket.create_connection(server.getsockname()[:2])), baud)
    block = os.urandom(1024)
    sent = 0
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        port.write(block)
        sent += len(block)
    elapsed = time.monotonic() - start
    port.close()
    drain.join()
    server.close()
    return sent / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baud", type=int, default=921600)
    parser.add_argument("--incompressible-mib", type=float, default=1.0)
    parser.add_argument("--typical-mib", type=float, default=4.0)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--max-payload", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    options = {"window": args.window, "max_payload": args.max_payload}
    n_incompressible = int(args.incompressible_mib * (1 << 20)) // PAGE
    n_typical = int(args.typical_mib * (1 << 20)) // PAGE

    results = []
    for name, pages, compress in (
        ("incompressible", incompressible_pages(n_incompressible), False),
        ("typical+zstd3", typical_pages(n_typical, random.Random(args.seed)), True),
    ):
        result = transfer(name, pages, args.baud, compress, options)
        result.line_rate = raw_line_rate(args.baud, result.seconds)
        results.append(result)

    nominal = line_rate(args.baud)
    print(
        f"board link goodput, {args.baud} baud 8N1 (nominal {nominal / 1024:.1f} KiB/s), "
        f"window {args.window}, max payload {args.max_payload}"
    )
    header = f"{'load':<15} {'pages':>6} {'page MiB':>8} {'wire MiB':>8} {'s':>6} {'goodput KiB/s':>13} {'line KiB/s':>10} {'goodput/line':>12} {'wire/line':>9} {'resent':>6}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.name:<15} {r.pages:>6} {r.page_bytes / 2**20:>8.2f} {r.wire_payload / 2**20:>8.2f} "
            f"{r.seconds:>6.1f} {r.goodput / 1024:>13.1f} {r.line_rate / 1024:>10.1f} "
            f"{r.goodput / r.line_rate:>12.3f} {r.wire_payload / r.seconds / r.line_rate:>9.3f} {r.retransmitted:>6}"
        )


if __name__ == "__main__":
    main()
