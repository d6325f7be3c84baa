"""The agent beside each board: the board's CR component as a gRPC service.

    connection.py  BoardConnection: the board link, reconnected with backoff forever
    fencing.py     Fences: refusing calls of a stale owner of a component
    service.py     AgentService: the operations, checked and bounded (no grpc)
    servicer.py    the gRPC servicer of migrate.v1.AgentService (conversion: migrate.convert),
                   and ACCESS: who may call what (its coordinator, nearly everything)
    server.py      start / serve / run: server (mutual TLS or loopback plaintext), health, signals
    __main__.py    python -m migrate.agent --board-url URL --listen HOST:PORT [--baud B]
                       (--tls-ca F --tls-cert F --tls-key F | --plaintext)

The agent never imports the emulator: it speaks to any board, emulated or
real, through its UART link (genode_cr.aio_client).
"""

from .connection import BoardConnection
from .fencing import Fences
from .service import AgentService, BoardStatus

__all__ = ["AgentService", "BoardConnection", "BoardStatus", "Fences"]
