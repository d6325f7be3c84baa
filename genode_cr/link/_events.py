"""What the link core reports to its user.

Events are immutable values built with keywords only.  They are not meant to be
subclassed: code dispatches on their exact type.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal, Union

__all__ = [
    "NEED_DATA",
    "LinkEstablished",
    "MessageReceived",
    "PeerRestarted",
    "PeerClosed",
    "Event",
]


class _Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return self.value


#: Returned by ``Link.next_event()`` when nothing can happen until more bytes or time arrive.
NEED_DATA = _Sentinel.NEED_DATA


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkEstablished:
    """The handshake completed: both sides know each other's epoch.

    Emitted again after every re-handshake (following PeerRestarted or PeerClosed).
    """

    peer_epoch: int
    #: Largest DATA payload the peer accepts; our fragments are cut to fit it.
    peer_max_payload: int
    #: Largest message the peer accepts; larger sends raise LocalLinkError.
    peer_max_message: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived:
    """One complete message from the peer, in the order it was sent."""

    payload: bytes

    def __repr__(self) -> str:
        # Checkpoint pages do not belong in logs.
        return f"MessageReceived(<{len(self.payload)} bytes>)"


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerRestarted:
    """The peer came back with a new epoch: it rebooted or reopened its port.

    Both directions start over.  ``lost_messages`` of ours were not (fully)
    acknowledged and have been discarded; whether the peer saw any of them is
    unknown.  Partially received messages from the old peer are discarded too.
    """

    old_epoch: int
    new_epoch: int
    lost_messages: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerClosed:
    """The peer ended its session with a RESET frame; state as for PeerRestarted."""

    epoch: int
    lost_messages: int
    #: Why, if the peer said so: it ended the link over a rule we broke (a message
    #: over its limit, say).  Empty for an ordinary close.
    reason: str = ""


Event = Union[LinkEstablished, MessageReceived, PeerRestarted, PeerClosed]
NeedData = Literal[_Sentinel.NEED_DATA]
