"""The board link: a reliable, framed message channel over a UART.

``Link`` is the protocol without I/O (bytes and time in, events and bytes
out).  ``BlockingLink`` and ``AsyncLink`` drive it over any pyserial URL;
``ports``, ``pacing`` and ``faultproxy`` provide test lines, UART pacing and a
misbehaving line.  The wire format is specified in docs/link-protocol.md.
"""

from ._errors import LinkDead, LinkError, LinkRefused, LinkReset, LocalLinkError, RemoteLinkError
from ._events import NEED_DATA, Event, LinkEstablished, MessageReceived, PeerClosed, PeerRestarted
from ._frame import (
    FRAME_VERSION,
    MIN_PAYLOAD_LIMIT,
    Flag,
    Frame,
    FrameError,
    FrameKind,
    decode_frame,
    encode_frame,
)
from ._link import MIN_MESSAGE_LIMIT, Link, LinkState, random_epoch
from ._stats import LinkStats
from .aio import AsyncLink
from .blocking import BlockingLink
from .faultproxy import FaultInjector, FaultProxy, Faults
from .pacing import PacedPort, Pacer, line_rate
from .ports import CrossedPort, MemoryPort, SocketPort, loop_pair, memory_pair

__all__ = [
    # core
    "Link",
    "LinkState",
    "LinkStats",
    "random_epoch",
    "NEED_DATA",
    "Event",
    "LinkEstablished",
    "MessageReceived",
    "PeerRestarted",
    "PeerClosed",
    # errors
    "LinkError",
    "LocalLinkError",
    "LinkRefused",
    "RemoteLinkError",
    "LinkReset",
    "LinkDead",
    # wire format
    "FRAME_VERSION",
    "MIN_PAYLOAD_LIMIT",
    "MIN_MESSAGE_LIMIT",
    "Frame",
    "FrameKind",
    "Flag",
    "FrameError",
    "encode_frame",
    "decode_frame",
    # transports and lines
    "BlockingLink",
    "AsyncLink",
    "Pacer",
    "PacedPort",
    "line_rate",
    "MemoryPort",
    "memory_pair",
    "SocketPort",
    "CrossedPort",
    "loop_pair",
    "Faults",
    "FaultInjector",
    "FaultProxy",
]
