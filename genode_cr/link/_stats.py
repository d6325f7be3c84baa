"""Counters kept by the link core; cheap enough to update on every frame."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["LinkStats"]


@dataclass(slots=True)
class LinkStats:
    # What went out.  Retransmissions count again in frames_sent and data_frames_sent.
    frames_sent: int = 0
    bytes_sent: int = 0
    data_frames_sent: int = 0
    frames_retransmitted: int = 0
    acks_sent: int = 0
    naks_sent: int = 0
    syncs_sent: int = 0
    timeouts: int = 0
    messages_sent: int = 0
    # What came in and was accepted as a frame.
    frames_received: int = 0
    bytes_received: int = 0
    messages_received: int = 0
    # Blocks from the wire that were not frames, by the check that failed.
    dropped_cobs: int = 0
    dropped_short: int = 0
    dropped_crc: int = 0
    dropped_version: int = 0
    dropped_kind: int = 0
    dropped_length: int = 0
    dropped_oversize: int = 0
    #: Bytes thrown away while skipping an over-long block to the next 0x00.
    garbage_bytes: int = 0
    # Valid frames that were not used.
    dropped_stale: int = 0  # another epoch: a previous session's leftovers
    dropped_echo: int = 0  # our own SYNC, echoed by the line
    dropped_duplicate: int = 0  # DATA we already had
    dropped_out_of_order: int = 0  # DATA after a gap (go-back-N keeps no out-of-order frames)
    dropped_busy: int = 0  # DATA refused because undelivered messages hit max_pending
    bad_acks: int = 0  # acknowledged a frame never sent

    @property
    def dropped_frames(self) -> int:
        """Blocks that failed a check on the way in, for any reason."""
        return (
            self.dropped_cobs
            + self.dropped_short
            + self.dropped_crc
            + self.dropped_version
            + self.dropped_kind
            + self.dropped_length
            + self.dropped_oversize
        )

    def count_drop(self, reason: str) -> None:
        name = f"dropped_{reason}"
        setattr(self, name, getattr(self, name) + 1)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        """The non-zero counters, for error messages and logs."""
        return ", ".join(f"{k}={v}" for k, v in self.as_dict().items() if v) or "no traffic"
