"""One checkpoint from the source agent into the target's restore session,
resumable.

The parts of the checkpoint (start, page chunks, end: the board cuts them
the same way every time) are kept as they pass. When a stream breaks, the
next attempt asks the target's agent how many parts its board already has,
sends it the rest of what was kept, and asks the source's board for the
remaining parts of the same checkpoint (its copy of the last one taken), so
a dropped link costs what was in flight, not the round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from genode_cr.checkpoint import PAGE_SIZE
from genode_cr.v1 import board_pb2 as bpb

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

    @property
    def page_bytes(self) -> int:
        return self.pages * PAGE_SIZE

    async def run(self, src: AgentClient, dst: AgentClient, *,
                  on_part: Callable[[Transfer], None] = lambda t: None,
                  check: Callable[[], None] = lambda: None) -> None:
        """One attempt; raises what broke it, and the next attempt goes on from there."""
        self.attempts += 1
        position = await self._target_position(dst) if self.attempts > 1 else 0
        if position is None:
            return                         # the target has the whole checkpoint
        writer = dst.open_stage(self.session, resume_from_part=position)
        try:
            for part in self.parts[position:]:
                await writer.write(part)
                self.sent_bytes += _wire_bytes(part)
            if not self.source_done:
                async for part in self._source(src):
                    self._take(part)
                    on_part(self)
                    await writer.write(part)
                    self.sent_bytes += _wire_bytes(part)
                    check()
                self.source_done = True
            await writer.finish()
        except BaseException:
            writer.cancel()
            raise

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
            self.taken_at_us = part.manifest.taken_at_us
            self.announced_bytes = part.page_bytes
        elif isinstance(part, bpb.PageChunk):
            self.pages += len(part.pages)

    async def _target_position(self, dst: AgentClient) -> int | None:
        """How many parts of this checkpoint the target's board has; None: all."""
        status = await dst.stage_status(self.session)
        if self.checkpoint_id and status.last_staged_id == self.checkpoint_id:
            return None
        if self.checkpoint_id and status.checkpoint_id == self.checkpoint_id:
            return status.parts
        return 0
