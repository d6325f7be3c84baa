"""Running a coordinator: its store, fleet, move engine and gRPC server.

    python -m migrate.coordinator --config coordinator.toml

prints ``coordinator listening on HOST:PORT`` once it serves (and
``metrics on HOST:PORT`` when Prometheus metrics are configured). Unfinished
moves in the journal are finished or rolled back as soon as it starts.

With ``[tls]`` in its configuration it serves mutual TLS and reaches its
agents with the same certificate; without, plaintext, and only if the listen
address and every agent are on loopback (PlaintextRefused otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from typing import Callable

import grpc

from .. import rpc
from ..config import CoordinatorConfig
from ..security.tls import server_credentials
from ..store import CheckpointStore, DiskPageStore, SqliteStore
from ..store.audit import AuditLog
from ..v1 import coordinator_pb2, coordinator_pb2_grpc
from .fleet import BoardState, Fleet
from .metrics import CoordinatorMetrics
from .moves import MoveEngine
from .provenance import Provenance
from .service import CoordinatorService
from .servicer import CoordinatorServicer, coordinator_access

__all__ = ["Coordinator", "run", "serve"]

log = logging.getLogger(__name__)

SERVICE_NAME = coordinator_pb2.DESCRIPTOR.services_by_name["CoordinatorService"].full_name
#: Time running calls get to finish when the coordinator stops.
STOP_GRACE_S = 2.0


@dataclass
class Coordinator:
    """A started coordinator, for embedding and tests."""
    server: grpc.aio.Server
    address: str
    engine: MoveEngine
    service: CoordinatorService
    fleet: Fleet
    store: SqliteStore
    metrics: CoordinatorMetrics
    metrics_port: int | None

    async def stop(self, grace: float | None = STOP_GRACE_S) -> None:
        await self.server.stop(grace)
        await self.engine.close()
        await self.fleet.close()
        self.metrics.close()
        self.store.close()


async def start(config: CoordinatorConfig, *, poll_interval: float | None = None) -> Coordinator:
    config.check_plaintext()
    config.state_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(config.state_dir / "coordinator.sqlite")
    pages = DiskPageStore(config.state_dir)
    metrics = CoordinatorMetrics()
    fleet = Fleet(config.boards, tls=config.tls,
                  **({"poll_interval": poll_interval} if poll_interval else {}))
    provenance = Provenance(config.signer, config.trusted_signers,
                            {b.name: b.identity for b in config.boards})
    engine = MoveEngine(fleet, store, metrics=metrics, provenance=provenance)
    service = CoordinatorService(fleet, engine, CheckpointStore(store, pages),
                                 retention=config.retention)

    async def board_changed(board: BoardState, before: int) -> None:
        metrics.board_health(board.name, board.health)
        if board.serving:
            await engine.settle_fences(board.name)

    fleet.on_change(board_changed)
    server = grpc.aio.server(options=rpc.SERVER_OPTIONS, interceptors=rpc.server_interceptors())
    coordinator_pb2_grpc.add_CoordinatorServiceServicer_to_server(
        CoordinatorServicer(service, engine, config.move_defaults,
                            access=coordinator_access(config.local_identity),
                            audit_log=AuditLog(store)), server)
    health = rpc.add_health_and_reflection(server, [SERVICE_NAME])
    host, _, _ = config.listen.rpartition(":")
    port = server.add_secure_port(config.listen, server_credentials(config.tls)) \
        if config.tls is not None else server.add_insecure_port(config.listen)
    if port == 0:
        raise OSError(f"cannot listen on {config.listen}")
    await fleet.start()
    recovered = await engine.recover()
    if recovered:
        log.info("finishing %d move(s) from the journal: %s", len(recovered),
                 ", ".join(recovered))
    await server.start()
    metrics_port = metrics.serve(config.metrics_listen) if config.metrics_listen else None
    await health.set("", rpc.SERVING)
    await health.set(SERVICE_NAME, rpc.SERVING)
    return Coordinator(server, f"{host}:{port}", engine, service, fleet, store, metrics,
                       metrics_port)


async def serve(config: CoordinatorConfig, *, ready: Callable[[str], None] | None = None) -> None:
    coordinator = await start(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready(coordinator.address)
    if coordinator.metrics_port is not None:
        host = (config.metrics_listen or "").rpartition(":")[0] or "127.0.0.1"
        print(f"metrics on {host}:{coordinator.metrics_port}", flush=True)
    try:
        await stop.wait()
    finally:
        await coordinator.stop()


def run(config: CoordinatorConfig, *, ready: Callable[[str], None] | None = None) -> None:
    asyncio.run(serve(config, ready=ready))
