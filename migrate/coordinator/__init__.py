"""The coordinator: the fleet's boards, moves and the checkpoint store."""

from .model import Move, MoveOptions
from .moves import MoveEngine
from .server import Coordinator, run, serve, start

__all__ = ["Coordinator", "Move", "MoveEngine", "MoveOptions", "run", "serve", "start"]
