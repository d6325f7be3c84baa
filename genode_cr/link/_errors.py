"""Errors of the board link, split by whose fault they are.

    GenodeCrError
     └─ LinkError           (abstract: never raised itself)
         ├─ LocalLinkError   this side asked for something the link cannot do
         │   └─ LinkRefused  the peer refused our handshake (and said why)
         ├─ RemoteLinkError  the peer broke a rule it had agreed to
         ├─ LinkReset        the session ended under us: in-flight messages are gone
         └─ LinkDead         the peer stopped answering, or the port went away

Damaged bytes on the line are not errors: the core drops the frame, counts it in
``Link.stats`` and carries on.  Only what the caller must act on is raised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from genode_cr.errors import GenodeCrError

if TYPE_CHECKING:
    from ._events import PeerClosed, PeerRestarted

# Feeds genode_cr.link.__all__.
__all__ = ["LinkError", "LocalLinkError", "LinkRefused", "RemoteLinkError", "LinkReset", "LinkDead"]


class LinkError(GenodeCrError):
    """Base of every board-link error; catch this to catch them all."""

    code = "link_error"

    def __init__(self, *args: object) -> None:
        # Raising the base would hide whose fault it was, which is the whole point.
        if type(self) is LinkError:
            raise TypeError("LinkError is abstract; raise one of its subclasses")
        super().__init__(*args)


class LocalLinkError(LinkError):
    """The caller misused the link: a message over the limit, a send after close."""

    code = "link_local"


class LinkRefused(LocalLinkError):
    """The peer refused the handshake: the limits we announced are below its
    minimums, say.  Its reason is in the message.  Terminal, like LinkDead; a
    new link with the same settings would be refused again.
    """

    code = "link_refused"


class RemoteLinkError(LinkError):
    """The peer violated the protocol in a way that cannot be skipped over.

    Example: a message larger than the limit this side announced in its SYNC.
    The link is unusable afterwards.
    """

    code = "link_remote"


class LinkReset(LinkError):
    """The peer restarted or closed its session; messages in flight were lost.

    Raised by the transports' ``receive()`` so that a caller waiting for a reply
    learns that none will come.  The link itself stays usable: it re-handshakes
    with the new peer on its own.  ``event`` is the PeerRestarted or PeerClosed
    the core emitted.
    """

    code = "link_reset"

    def __init__(self, event: PeerRestarted | PeerClosed) -> None:
        super().__init__(f"board link reset: {event}")
        self.event = event


class LinkDead(LinkError):
    """Nothing came back from the peer within ``dead_after`` seconds, or the port failed.

    Terminal: build a new link to try again.
    """

    code = "link_dead"
