"""One checkpoint from the source agent into the target's restore session,
resumable.

The parts of the checkpoint (start, page chunks, end: the board cuts them
the same way every time) are kept as they pass. When a stream breaks, the
next attempt asks the target's agent how many parts its board already has,
sends it the rest of what was kept, and asks the source's board for the
remaining parts of the same checkpoint (its copy of the last one taken), so
a dropped link costs what was in flight, not the round.

Signed checkpoints (docs/security.md): the source's board announces the root
digest in the checkpoint's start and its agent signs it right after, so the
signature is checked (``vet``) before the first part goes to the target, whose
agent checks it again before its board sees a byte, while the pages still
come: the two links overlap as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from genode_cr.checkpoint import PAGE_SIZE
from genode_cr.v1 import board_pb2 as bpb

from ..security.signing import CheckpointStatement, Signature
from .agents import AgentClient, CheckpointPart, StageWriter

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
    signature: Signature | None = None    # the source agent's, right after the start
    root_digest: bytes = b""              # as the start announced it
    manifest_parent: str = ""
    vetted: bool = False              # the signature was checked: parts may go on
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
        ``vet`` checks the source's signature (raises to refuse) before the first part
        goes to the target."""
        self.attempts += 1
        position = await self._target_position(dst) if self.staging else 0
        if position is None:
            return                         # the target has the whole checkpoint
        writer: StageWriter | None = None
        try:
            if self.vetted:
                writer = self._open_stage(dst, position)
                await self._send(writer, self.parts[position:], on_part)
            if not (self.source_done or self._ended):
                async for part in self._source(src):
                    taken = self._receive(part)
                    if taken:
                        on_part(self)
                        check()
                    if writer is None and self._can_vet:
                        vet(self)
                        self.vetted = True
                        writer = self._open_stage(dst, 0)
                        await self._send(writer, self.parts, on_part)
                    elif writer is not None and taken:
                        await self._send(writer, [part], on_part)
                self.source_done = True
            if writer is None:
                # The source's stream ended before it could be vetted (only a board
                # that announces no root at the start does that): vet and send it whole.
                vet(self)
                self.vetted = True
                writer = self._open_stage(dst, position)
                await self._send(writer, self.parts[position:], on_part)
            await writer.finish()
        except BaseException:
            if writer is not None:
                writer.cancel()
            raise

    def _receive(self, part: CheckpointPart | Signature) -> bool:
        """Takes what the source sent; False for what is not a part of the checkpoint."""
        if isinstance(part, Signature):
            self.signature = part
            return False
        if isinstance(part, bpb.CheckpointEnd) and self._ended:
            return False                   # a resumed stream repeats nothing else
        self._take(part)
        return True

    @property
    def _can_vet(self) -> bool:
        """Whether the source has said all it will say before the pages: the start
        with its root digest, and the signature that follows it or the first part
        after it (a source that does not sign sends none)."""
        if not self.parts or not self.root_digest:
            return False
        return self.signature is not None or len(self.parts) > 1

    def _open_stage(self, dst: AgentClient, position: int) -> StageWriter:
        self.staging = True
        return dst.open_stage(self.session, resume_from_part=position,
                              signature=self.signature, root_digest=self.root_digest)

    async def _send(self, writer: StageWriter, parts: list[CheckpointPart],
                    on_part: Callable[[Transfer], None]) -> None:
        for part in parts:
            await writer.write(part)
            self.sent_bytes += _wire_bytes(part)
            on_part(self)

    @property
    def _ended(self) -> bool:
        return bool(self.parts) and isinstance(self.parts[-1], bpb.CheckpointEnd)

    def _source(self, src: AgentClient):  # type: ignore[no-untyped-def]
        if self.parts:
            return src.checkpoint(self.component, generation=self.generation,
                                  resume_id=self.checkpoint_id,
                                  resume_from_part=len(self.parts))
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
            self.root_digest = part.root_digest
        elif isinstance(part, bpb.PageChunk):
            self.pages += len(part.pages)
        else:
            self.root_digest = self.root_digest or part.root_digest

    async def _target_position(self, dst: AgentClient) -> int | None:
        """How many parts of this checkpoint the target's board has; None: all."""
        status = await dst.stage_status(self.session)
        if self.checkpoint_id and status.last_staged_id == self.checkpoint_id:
            return None
        if self.checkpoint_id and status.checkpoint_id == self.checkpoint_id:
            return status.parts
        return 0
