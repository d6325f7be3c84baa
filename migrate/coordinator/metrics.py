"""Prometheus metrics of a coordinator, on a registry of its own (several
coordinators may share a process in tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from ..v1 import resources_pb2 as rpb
from .model import Move

__all__ = ["CoordinatorMetrics"]

# Downtime budgets are in the tens to hundreds of milliseconds; a stop-and-copy
# over a 921600-baud UART takes minutes.
_DOWNTIME_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
_TOTAL_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800)


class CoordinatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.moves = Counter("migrate_moves", "Moves that ended, by result", ["result"],
                             registry=self.registry)
        self.downtime = Histogram("migrate_move_downtime_seconds",
                                  "Freeze to the target running", buckets=_DOWNTIME_BUCKETS,
                                  registry=self.registry)
        self.total = Histogram("migrate_move_duration_seconds", "Whole moves",
                               buckets=_TOTAL_BUCKETS, registry=self.registry)
        self.bytes = Counter("migrate_move_wire_bytes", "Compressed page bytes moved",
                             registry=self.registry)
        self.rounds = Histogram("migrate_move_rounds", "Rounds per move",
                                buckets=(1, 2, 3, 4, 5, 6, 8, 12, 16, 32, 64),
                                registry=self.registry)
        self.board_up = Gauge("migrate_board_up", "1 while a board serves", ["board"],
                              registry=self.registry)

    def move_finished(self, move: Move) -> None:
        self.moves.labels(result=move.phase).inc()
        self.total.observe(move.total_ms / 1000)
        self.bytes.inc(sum(r.wire_bytes for r in move.rounds))
        if move.phase == "done":
            self.downtime.observe(move.downtime_ms / 1000)
            self.rounds.observe(len(move.rounds))

    def board_health(self, board: str, health: int) -> None:
        self.board_up.labels(board=board).set(1 if health == rpb.BOARD_HEALTH_SERVING else 0)

    def serve(self, address: str) -> int:
        """Serves /metrics on host:port (port 0 picks one); returns the port."""
        host, _, port = address.rpartition(":")
        server, _thread = start_http_server(int(port), addr=host or "127.0.0.1",
                                            registry=self.registry)
        self._server = server
        return server.server_address[1]

    def close(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()
