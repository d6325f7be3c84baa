"""Running an agent: its board connection, its gRPC server and its health.

    python -m migrate.agent --board-url socket://127.0.0.1:4555 --listen 127.0.0.1:7701 \
        --tls-ca ca.crt --tls-cert agent-boardA.crt --tls-key agent-boardA.key

With TLS (``tls``) the agent serves mutual TLS and accepts its calls only from
its coordinator's identity (``coordinator``; see migrate.agent.servicer.ACCESS);
without, it serves plaintext on loopback only and treats every caller as that
coordinator. ``signer`` signs the checkpoints it streams; it stages only
checkpoints signed by one of ``trusted``, unless ``allow_unsigned`` (plaintext
only) lets unsigned ones through (migrate.agent.service).

prints ``agent for BOARDNAME listening on HOST:PORT`` once the board has
answered its hello (the gRPC server, health included, runs from the start:
NOT_SERVING until then). Health is SERVING exactly while the board link is
up; SIGINT or SIGTERM turns it NOT_SERVING and then stops the server,
giving calls in flight a short grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import grpc
from grpc_health.v1 import health

from genode_cr.aio_client import DEFAULT_TIMEOUT

from .. import rpc
from ..errors import ConfigError
from ..security.identity import COORDINATOR, Identity
from ..security.signing import Signer, TrustedSigners
from ..security.tls import TlsConfig, check_plaintext_allowed, server_credentials
from ..v1 import agent_pb2, agent_pb2_grpc
from .connection import MAX_BACKOFF_S, BoardConnection
from .service import DEFAULT_SESSION_IDLE_TIMEOUT, AgentService
from .servicer import AgentServicer, agent_access

__all__ = ["Agent", "SERVICE_NAME", "run", "serve", "signing_from_flags", "start"]

log = logging.getLogger(__name__)

SERVICE_NAME = agent_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name
#: Time calls in flight get to finish when the agent stops.
STOP_GRACE_S = 2.0

#: ready(address): called once the agent serves and its board has answered.
Ready = Callable[[str], None]


class _Health:
    """The health service's statuses, following the board link (NOT_SERVING once stopping)."""

    def __init__(self, servicer: health.aio.HealthServicer):
        self.servicer = servicer
        self.stopping = False

    async def set(self, serving: bool) -> None:
        status = rpc.SERVING if serving and not self.stopping else rpc.NOT_SERVING
        for name in ("", SERVICE_NAME):
            await self.servicer.set(name, status)

    async def stop(self) -> None:
        self.stopping = True
        await self.set(False)


@dataclass
class Agent:
    """A started agent, for embedding and tests."""
    server: grpc.aio.Server
    address: str
    service: AgentService
    connection: BoardConnection
    health: _Health

    async def stop(self, grace: float | None = STOP_GRACE_S) -> None:
        await self.health.stop()
        await self.server.stop(grace)
        await self.service.close()
        await self.connection.close()


async def start(board_url: str, listen: str, *, baud: int | None = None,
                timeout: float = DEFAULT_TIMEOUT, max_backoff: float = MAX_BACKOFF_S,
                session_idle_timeout: float = DEFAULT_SESSION_IDLE_TIMEOUT,
                link_options: Mapping[str, Any] | None = None,
                tls: TlsConfig | None = None,
                coordinator: Identity = COORDINATOR, signer: Signer | None = None,
                trusted: TrustedSigners | None = None, allow_unsigned: bool = False) -> Agent:
    """Starts serving ``listen`` ("127.0.0.1:0" picks a port) and connecting to the board.

    ``session_idle_timeout``: restore sessions unused this long are aborted.
    ``link_options``: for the agent's side of the board link (``Link``: dead_after, ...).
    ``tls``: serve mutual TLS; None serves plaintext, which only a loopback
    ``listen`` may (PlaintextRefused otherwise). ``coordinator``: the only
    identity whose calls (but GetBoard) the agent accepts. ``signer``: signs the
    checkpoints it streams; ``trusted``: whose checkpoints it stages;
    ``allow_unsigned``: stage unsigned ones too (plaintext only).
    """
    if tls is None:
        check_plaintext_allowed(listen, "to serve plaintext gRPC")
    elif allow_unsigned:
        raise ConfigError("unsigned checkpoints are allowed on a plaintext (loopback) agent "
                          "only, not on one that serves TLS")
    server = grpc.aio.server(options=rpc.SERVER_OPTIONS, interceptors=rpc.server_interceptors())
    status = _Health(rpc.add_health_and_reflection(server, [SERVICE_NAME]))
    host = listen.rpartition(":")[0]
    try:
        port = server.add_secure_port(listen, server_credentials(tls)) if tls is not None \
            else server.add_insecure_port(listen)
    except RuntimeError as error:         # grpc's way of saying the address is taken
        raise OSError(f"cannot listen on {listen}: {error}") from None
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    address = f"{host}:{port}"
    connection = BoardConnection(board_url, baud=baud, timeout=timeout, max_backoff=max_backoff,
                                 on_change=status.set, link_options=link_options)
    service = AgentService(connection, session_idle_timeout=session_idle_timeout,
                           signer=signer, trusted=trusted, allow_unsigned=allow_unsigned)
    servicer = AgentServicer(service, address=address, access=agent_access(coordinator))
    agent_pb2_grpc.add_AgentServiceServicer_to_server(servicer, server)
    await status.set(False)                # until the board has said hello
    await server.start()
    await connection.start()
    return Agent(server, address, service, connection, status)


async def serve(board_url: str, listen: str, *, baud: int | None = None,
                ready: Ready | None = None,
                session_idle_timeout: float = DEFAULT_SESSION_IDLE_TIMEOUT,
                tls: TlsConfig | None = None, coordinator: Identity = COORDINATOR,
                signer: Signer | None = None, trusted: TrustedSigners | None = None,
                allow_unsigned: bool = False) -> None:
    """Serves until SIGINT or SIGTERM. ``ready`` None prints the ready line."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not main thread
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
    agent = await start(board_url, listen, baud=baud, session_idle_timeout=session_idle_timeout,
                        tls=tls, coordinator=coordinator, signer=signer, trusted=trusted,
                        allow_unsigned=allow_unsigned)
    try:
        board_up = asyncio.ensure_future(agent.connection.wait_up())
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({board_up, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if board_up.done():
                info = board_up.result()
                if ready is None:
                    print(f"agent for {info.name} listening on {agent.address}", flush=True)
                else:
                    ready(agent.address)
                await stopped
        finally:
            board_up.cancel()
            stopped.cancel()
    finally:
        log.info("agent for %s stopping", agent.connection.board_name)
        await agent.stop()
        for sig in handled:
            loop.remove_signal_handler(sig)


def run(board_url: str, listen: str, *, baud: int | None = None,
        ready: Ready | None = None,
        session_idle_timeout: float = DEFAULT_SESSION_IDLE_TIMEOUT,
        tls: TlsConfig | None = None, coordinator: Identity = COORDINATOR,
        signer: Signer | None = None, trusted: TrustedSigners | None = None,
        allow_unsigned: bool = False) -> None:
    """``serve`` on a new event loop; returns after SIGINT or SIGTERM."""
    asyncio.run(serve(board_url, listen, baud=baud, ready=ready,
                      session_idle_timeout=session_idle_timeout, tls=tls,
                      coordinator=coordinator, signer=signer, trusted=trusted,
                      allow_unsigned=allow_unsigned))


def signing_from_flags(signing_key: str | None, trusted: list[str] | None,
                       allow_unsigned: bool, tls: TlsConfig | None
                       ) -> tuple[Signer | None, TrustedSigners | None]:
    """The agent's --signing-key, --trusted-signer(s) and --allow-unsigned, checked.

    The key signs as the agent's certificate identity (with TLS), else as the identity
    its file name says (``agent-<board>.signing.key``). ConfigError for a bad file or
    --allow-unsigned without --plaintext."""
    if allow_unsigned and tls is not None:
        raise ConfigError("--allow-unsigned goes with --plaintext only")
    identity = tls.identity if tls is not None else None
    signer = Signer.from_file(signing_key, identity) if signing_key else None
    return signer, TrustedSigners.load(trusted) if trusted else None
