"""Who made a checkpoint, as the coordinator sees it: checks the source agent's
signature on what it receives, signs what it stores, and picks the signature
a target agent will verify (docs/security.md, "Signed checkpoints").

- Received (a move's round, ``migrate checkpoint``): with ``trusted`` signers
  configured, the checkpoint must be signed by the agent of the board it came
  from (that board's configured identity), else UntrustedCheckpoint and it goes
  no further. Without, it passes unchecked: the target agent still checks it.
- Stored: the coordinator adds its own signature (``signer``) to the agent's.
- Restored from the store: the coordinator's own signature, verified with its
  own key before anything is staged (so a store edited behind its back, root
  digest and all, is refused), else the source agent's, verified against
  ``trusted`` when configured; that one goes to the target.
"""

from __future__ import annotations

from typing import Mapping

from ..errors import CheckpointSignerUnknown, CheckpointUnsigned
from ..security.identity import Identity, Role
from ..security.signing import CheckpointStatement, Signature, Signer, TrustedSigners
from ..store import CheckpointMeta

__all__ = ["Provenance"]


class Provenance:
    """``signer``: the coordinator's key; ``trusted``: the agents' public keys (None: do
    not check received checkpoints); ``agents``: board -> its agent's identity (default
    agent/<board>)."""

    def __init__(self, signer: Signer | None = None, trusted: TrustedSigners | None = None,
                 agents: Mapping[str, Identity | None] | None = None):
        self.signer = signer
        self.trusted = trusted
        self.agents = dict(agents or {})
        self._own = signer.trusts_itself() if signer is not None else None

    @property
    def enabled(self) -> bool:
        return self.signer is not None or self.trusted is not None

    def agent_of(self, board: str) -> Identity:
        return self.agents.get(board) or Identity(Role.AGENT, board)

    def check_received(self, board: str, statement: CheckpointStatement,
                       signature: Signature | None) -> None:
        """A checkpoint streamed by the agent of ``board``: signed by that agent?"""
        if self.trusted is None:
            return
        signer = self.trusted.verify(statement, signature)
        expected = self.agent_of(board)
        if signer != expected:
            raise CheckpointSignerUnknown(
                f"{statement} came from {board} but is signed by {signer}, not by that "
                f"board's agent ({expected})", metadata={"signer": signer.uri})

    def sign(self, statement: CheckpointStatement) -> Signature | None:
        return self.signer.sign(statement) if self.signer is not None else None

    def for_stored(self, meta: CheckpointMeta, statement: CheckpointStatement
                   ) -> Signature | None:
        """The verified signature to stage a stored checkpoint with; None for an unsigned
        checkpoint when the coordinator neither signs nor checks."""
        own = _by(meta.signatures, self.signer.identity) if self.signer is not None else None
        if own is not None and self._own is not None:
            self._own.verify(statement, own)
            return own
        agent = next((s for s in meta.signatures if s.signer.role == Role.AGENT), None)
        if self.trusted is not None:
            self.trusted.verify(statement, agent)
        elif self.signer is not None and agent is None:
            raise CheckpointUnsigned(f"stored {statement} carries no signature (neither the "
                                     "coordinator's nor its source agent's)")
        return agent


def _by(signatures: tuple[Signature, ...], signer: Identity) -> Signature | None:
    return next((s for s in signatures if s.signer == signer), None)
