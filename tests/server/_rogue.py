"""Peers that break the rules on purpose, over a real TCP connection to a board.

``RoguePeer`` speaks the link protocol by hand, frame by frame, so that it can
do what a conforming side never does (announce tiny limits, send a message
over the board's limit, acknowledge frames never sent). ``drive_until_failed``
runs our own sans-I/O core over a socket, for peers built from it.
``BoardProcess`` is `genode-cr board serve` as a user starts it.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from genode_cr.link import (NEED_DATA, Flag, Frame, FrameError, FrameKind, Link, decode_frame,
                            encode_frame)
from genode_cr.link._link import SYNC_PAYLOAD

__all__ = ["BoardProcess", "RoguePeer", "drive_until_failed"]

#: Generous guards so that a hung peer fails its test instead of hanging it.
DEADLINE = 20.0


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("socket://").rsplit(":", 1)
    return host, int(port)


class BoardProcess:
    """`python -m genode_cr.cli board serve` on a free TCP port, with its stderr in a file."""

    def __init__(self, name: str, log: Path, *options: str) -> None:
        self.name = name
        self.log = log
        with open(log, "wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "genode_cr.cli", "board", "serve", "--name", name,
                 "--uart", "socket://127.0.0.1:0", *options],
                stdout=subprocess.PIPE, stderr=stderr, start_new_session=True)
        lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=lambda: lines.put(self.process.stdout.readline()),
                         daemon=True).start()
        try:
            line = lines.get(timeout=DEADLINE).decode().strip()
        except queue.Empty:
            self.stop()
            raise AssertionError(f"board {name} did not report its URL:\n{self.stderr()}") from None
        m = re.fullmatch(rf"{re.escape(name)} listening on (socket://127\.0\.0\.1:\d+)", line)
        assert m, f"unexpected first line from board {name}: {line!r}\n{self.stderr()}"
        self.url = m[1]
        self.address = _address(self.url)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.process.stdout.close()


class RoguePeer:
    """One TCP connection to a board, spoken to frame by frame."""

    def __init__(self, address: tuple[str, int], epoch: int = 0x600DF00D) -> None:
        self.sock = socket.create_connection(address, timeout=DEADLINE)
        self.epoch = epoch
        self.board_epoch = 0
        self._pending = b""
        self._next_seq = 0           # our next DATA number
        self._expected = 0           # the board's next DATA number

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RoguePeer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- sending ---------------------------------------------------------------------

    def send(self, kind: FrameKind, *, flags: Flag = Flag.NONE, payload: bytes = b"",
             seq: int | None = None, ack: int | None = None) -> None:
        frame = Frame(kind=kind, flags=flags, epoch=self.epoch, peer_epoch=self.board_epoch,
                      seq=self._next_seq if seq is None else seq,
                      ack=self._expected if ack is None else ack, payload=payload)
        self.sock.sendall((b"\x00" if kind is FrameKind.SYNC else b"") + encode_frame(frame))

    def sync(self, max_payload: int = 1024, max_message: int = 1 << 20) -> None:
        self.send(FrameKind.SYNC, payload=SYNC_PAYLOAD.pack(max_payload, max_message), seq=0, ack=0)

    def handshake(self, max_payload: int = 1024, max_message: int = 1 << 20) -> None:
        """SYNC, the board's SYNC naming us, our ACK: the board is established."""
        self.sync(max_payload, max_message)
        answer = self.next_frame(lambda f: f.kind is FrameKind.SYNC and f.peer_epoch == self.epoch)
        self.board_epoch = answer.epoch
        self.send(FrameKind.ACK)

    def send_message(self, message: bytes, fragment: int = 1024) -> None:
        """DATA frames for ``message``, whatever the board's limits; no window."""
        pieces = [message[i:i + fragment] for i in range(0, len(message), fragment)] or [b""]
        wire = bytearray()
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            wire += encode_frame(Frame(
                kind=FrameKind.DATA, flags=Flag.END if last else Flag.NONE, epoch=self.epoch,
                peer_epoch=self.board_epoch, seq=self._next_seq, ack=self._expected,
                payload=piece))
            self._next_seq += 1
        self.sock.sendall(wire)

    # --- receiving -------------------------------------------------------------------

    def next_frame(self, wanted=lambda frame: True, timeout: float = DEADLINE) -> Frame:
        """The next frame from the board that ``wanted`` accepts; EOFError if it hangs up."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\x00" in self._pending:
                block, self._pending = self._pending.split(b"\x00", 1)
                if not block:
                    continue
                try:
                    frame = decode_frame(block)
                except FrameError:
                    continue
                if wanted(frame):
                    return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no such frame from the board")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the board hung up")
            self._pending += data

    def receive_message(self, timeout: float = DEADLINE) -> bytes:
        """One whole message from the board, each fragment acknowledged."""
        parts = []
        while True:
            frame = self.next_frame(lambda f: f.kind is FrameKind.DATA, timeout)
            if frame.seq != self._expected:
                continue                 # a retransmission we already have
            self._expected += 1
            parts.append(frame.payload)
            self.send(FrameKind.ACK)
            if frame.flags & Flag.END:
                return b"".join(parts)

    def reset_and_hang_up(self, timeout: float = DEADLINE) -> Frame:
        """The RESET the board ends the link with; asserts it then closes the connection."""
        reset = self.next_frame(lambda f: f.kind is FrameKind.RESET, timeout)
        self.sock.settimeout(timeout)
        while self.sock.recv(65536):
            pass                          # anything after the RESET is the board's to send
        return reset


def drive_until_failed(link: Link, address: tuple[str, int], timeout: float = DEADLINE) -> None:
    """Runs our own link core over a TCP connection to the board and raises the
    error it fails with; AssertionError if it has not failed within ``timeout``."""
    deadline = time.monotonic() + timeout
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.settimeout(0.02)
        while time.monotonic() < deadline:
            now = time.monotonic()
            link.handle_timeout(now)
            out = link.data_to_send(now)
            if out:
                sock.sendall(out)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                data = None
            if data:
                link.receive_data(data, time.monotonic())
            while link.next_event() is not NEED_DATA:
                pass                     # raises once the link has failed
            if data == b"":
                break                    # the board hung up without telling the core why
    raise AssertionError(f"the link did not fail: {link!r}")
