"""Writing no faster than a UART would.

A TCP socket or a QEMU chardev carries bytes as fast as the host can copy
them, so link-bound behaviour (window sizes, retransmission timers, goodput)
only shows when something holds the writer to the line rate.  With 8N1 framing
a UART sends ten bit times per byte: ``baud / 10`` bytes per second.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from .ports import SerialLike

__all__ = ["line_rate", "Pacer", "PacedPort"]


def line_rate(baud: int) -> float:
    """Bytes per second of an 8N1 line: start bit, 8 data bits, stop bit."""
    return baud / 10


class Pacer:
    """A virtual transmitter clock: ``wait(n)`` returns when the line can take ``n`` more bytes.

    The clock advances by exactly ``n / rate`` per call, so a late wake-up is
    made up by the next call instead of lowering the rate.  An idle line does
    not bank credit: after a pause, the first bytes go out at once and the rest
    at the line rate again, as on a real UART.
    """

    def __init__(
        self,
        bytes_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if bytes_per_second <= 0:
            raise ValueError("rate must be positive")
        self.rate = bytes_per_second
        self._clock = clock
        self._sleep = sleep
        self._free_at = float("-inf")

    def wait(self, n: int) -> None:
        now = self._clock()
        if self._free_at < now:
            self._free_at = now
        elif self._free_at > now:
            self._sleep(self._free_at - now)
        self._free_at += n / self.rate


class PacedPort:
    """A port whose writes trickle out at a UART's line rate, and whose reads
    deliver no faster than one either; everything else is the inner port's.

    Writes go out in slices of about ``quantum`` seconds of line time, so the
    far end sees a steady stream rather than whole frames in bursts. Reads are
    held back by a receive clock of their own: a peer that writes unpaced over
    a socket (an agent) still reaches this end at the line rate, as over a
    real UART, where each direction has its own wire.
    """

    def __init__(self, port: SerialLike, baud: int, *, quantum: float = 0.002, pacer: Pacer | None = None,
                 rx_pacer: Pacer | None = None, pace_reads: bool = True) -> None:
        self.port = port
        self.baud = baud
        self.pacer = pacer or Pacer(line_rate(baud))
        self.rx_pacer = (rx_pacer or Pacer(self.pacer.rate)) if pace_reads else None
        self._slice = max(1, int(self.pacer.rate * quantum))

    #: Tells the link transports to hand over one frame per write, so that a
    #: frame's retransmission clock starts when it is really on the line.
    preferred_write_size = 1

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        for start in range(0, len(view), self._slice):
            piece = view[start : start + self._slice]
            self.pacer.wait(len(piece))
            self.port.write(bytes(piece))
        return len(view)

    def read(self, size: int = 1) -> bytes:
        # At most one slice at a time, so the receive clock delivers evenly.
        data = self.port.read(min(size, self._slice) if self.rx_pacer else size)
        if data and self.rx_pacer is not None:
            self.rx_pacer.wait(len(data))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.port, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # `timeout` and other settings belong to the wrapped port.
        if name in ("port", "baud", "pacer", "rx_pacer", "_slice"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.port, name, value)
