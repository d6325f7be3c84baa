"""The error hierarchy of genode_cr, named by whose fault an error is.

Every error carries a stable ``code`` so that the CLI (exit codes, JSON) and
the gRPC servicers (status codes) can map it once, at their edge.

    GenodeCrError
     ├─ RequestError       the caller asked for something impossible
     │   ├─ UnknownComponent
     │   └─ NameInUse
     ├─ CheckpointError    the checkpoint itself is unusable
     │   ├─ CheckpointCorrupt   (tampered, truncated, undecodable)
     │   ├─ BrokenChain         (missing or mismatched parent)
     │   └─ WrongArch
     ├─ BoardError         the target board cannot take it
     │   ├─ RomMissing
     │   ├─ RomMismatch
     │   └─ InsufficientQuota
     ├─ BoardUnreachable   the link to the board is dead or the board restarted
     ├─ ProtocolError      the peer sent something we cannot understand
     └─ LinkError          (genode_cr.link) the line itself
         ├─ LocalLinkError, RemoteLinkError
         ├─ LinkReset      the peer restarted or closed
         └─ LinkDead       nothing acknowledged past the timeout
"""

from __future__ import annotations

__all__ = [
    "GenodeCrError",
    "RequestError",
    "UnknownComponent",
    "NameInUse",
    "CheckpointError",
    "CheckpointCorrupt",
    "BrokenChain",
    "WrongArch",
    "BoardError",
    "RomMissing",
    "RomMismatch",
    "InsufficientQuota",
    "BoardUnreachable",
    "ProtocolError",
    "error_from_code",
]


class GenodeCrError(Exception):
    code = "error"


class RequestError(GenodeCrError):
    code = "bad_request"


class UnknownComponent(RequestError):
    code = "unknown_component"


class NameInUse(RequestError):
    code = "name_in_use"


class CheckpointError(GenodeCrError):
    code = "bad_checkpoint"


class CheckpointCorrupt(CheckpointError):
    code = "checkpoint_corrupt"


class BrokenChain(CheckpointError):
    code = "broken_chain"


class WrongArch(CheckpointError):
    code = "wrong_arch"


class BoardError(GenodeCrError):
    code = "board_refused"


class RomMissing(BoardError):
    code = "rom_missing"


class RomMismatch(BoardError):
    code = "rom_mismatch"


class InsufficientQuota(BoardError):
    code = "insufficient_quota"


class BoardUnreachable(GenodeCrError):
    code = "board_unreachable"


class ProtocolError(GenodeCrError):
    code = "protocol_error"


def _all_subclasses(cls: type) -> list[type]:
    return [cls] + [s for sub in cls.__subclasses__() for s in _all_subclasses(sub)]


def error_from_code(code: str, message: str) -> GenodeCrError:
    """Rebuilds an error the peer reported, so each edge maps it only once."""
    for cls in _all_subclasses(GenodeCrError):
        if cls.code == code:
            return cls(message)
    return GenodeCrError(f"{code}: {message}")
