"""One checkpoint from the source agent into the target's restore session,
resumable.

The parts of the checkpoint (start, page chunks, end: the board cuts them
the same way every time) are kept as they pass. When a stream breaks, the
next attempt asks the target's agent how many parts its board already has,
sends it the rest of what was kept, and asks the source's board for the
remaining parts of the same checkpoint (its copy of the last one taken), so
a dropped link costs what was in flight, not the round.

Signed checkpoints (docs/security.md): the source agent's signature comes
after the checkpoint's end, and the target's agent must verify it before the
first part reaches its board. So a round crosses in two legs: the whole
checkpoint from the source (kept here anyway, for resuming), its signature
checked (``vet``), then the whole of it to the target with the signature
first. The two links no longer overlap: that is the price of refusing an
untrusted checkpoint before it touches the target board.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from genode_cr.checkpoint import PAGE_SIZE
from genode_cr.v1 import board_pb2 as bpb

from ..security.signing import CheckpointStatement, Signature
from .agents import AgentClient, CheckpointPart

__all__ = ["Transfer"]


def _wire_bytes(part: CheckpointPart) -> int:
    """The part's bytes as it crosses a link: compressed pages with their
    digests, and the manifest, which for a large component is not small."""
    return part.ByteSize()


@dataclass
class Transfer:
    component: str
    session: int
    since: str
    freeze: bool
    generation: int
    parts: list[CheckpointPart] = field(default_factory=list)
    source_done: bool = False
    attempts: int = 0
    checkpoint_id: str = ""
    taken_at_us: int = 0
    announced_bytes: int = 0          # page bytes the start announced
    pages: int = 0                    # received from the source
    wire_bytes: int = 0               # received from the source: messages as they crossed
    sent_bytes: int = 0               # written to the target, resends included
    signature: Signature | None = None    # the source agent's, after the end
    root_digest: bytes = b""
    manifest_parent: str = ""
    staging: bool = False             # a stage stream to the target was opened

    @property
    def page_bytes(self) -> int:
        return self.pages * PAGE_SIZE

    @property
    def statement(self) -> CheckpointStatement:
        return CheckpointStatement(self.component, self.checkpoint_id, self.manifest_parent,
                                   self.root_digest)

    async def run(self, src: AgentClient, dst: AgentClient, *,
                  on_part: Callable[[Transfer], None] = lambda t: None,
                  check: Callable[[], None] = lambda: None,
                  vet: Callable[[Transfer], None] = lambda t: None) -> None:
        """One attempt; raises what broke it, and the next attempt goes on from there.
        ``vet`` checks the source's signature once the source is done (raises to refuse)."""
        self.attempts += 1
        if not self.source_done:
            async for part in self._source(src):
                if isinstance(part, Signature):
                    self.signature = part
                    continue
                if isinstance(part, bpb.CheckpointEnd) and self._ended:
                    continue               # asked again for the signature that follows it
                self._take(part)
                on_part(self)
                check()
            self.source_done = True
            vet(self)
        position = await self._target_position(dst) if self.staging else 0
        if position is None:
            return                         # the target has the whole checkpoint
        self.staging = True
        writer = dst.open_stage(self.session, resume_from_part=position,
                                signature=self.signature, root_digest=self.root_digest)
        try:
            for part in self.parts[position:]:
                await writer.write(part)
                self.sent_bytes += _wire_bytes(part)
                on_part(self)
            await writer.finish()
        except BaseException:
            writer.cancel()
            raise

    @property
    def _ended(self) -> bool:
        return bool(self.parts) and isinstance(self.parts[-1], bpb.CheckpointEnd)

    def _source(self, src: AgentClient):  # type: ignore[no-untyped-def]
        if self.parts:
            # Broken after the end but before the signature: the end again, and the
            # agent signs it again.
            return src.checkpoint(self.component, generation=self.generation,
                                  resume_id=self.checkpoint_id,
                                  resume_from_part=len(self.parts) - self._ended)
        return src.checkpoint(self.component, since_id=self.since, freeze=self.freeze,
                              generation=self.generation)

    def _take(self, part: CheckpointPart) -> None:
        self.parts.append(part)
        self.wire_bytes += _wire_bytes(part)
        if isinstance(part, bpb.CheckpointStart):
            self.checkpoint_id = part.manifest.id
            self.manifest_parent = part.manifest.parent_id
            self.taken_at_us = part.manifest.taken_at_us
            self.announced_bytes = part.page_bytes
        elif isinstance(part, bpb.PageChunk):
            self.pages += len(part.pages)
        else:
            self.root_digest = part.root_digest

    async def _target_position(self, dst: AgentClient) -> int | None:
        """How many parts of this checkpoint the target's board has; None: all."""
        status = await dst.stage_status(self.session)
        if self.checkpoint_id and status.last_staged_id == self.checkpoint_id:
            return None
        if self.checkpoint_id and status.checkpoint_id == self.checkpoint_id:
            return status.parts
        return 0
