"""A synchronous client of the coordinator (migrate.v1.CoordinatorService).

One method per RPC, each with a deadline, and our own errors in place of
``grpc.RpcError`` (mapped by ``migrate.rpc.client_errors``, the client edge):
callers such as the CLI never catch grpc types.

    tls = TlsConfig.load("ca.crt", "operator-alice.crt", "operator-alice.key")
    with CoordinatorClient("127.0.0.1:7700", tls=tls) as coordinator:
        move = coordinator.create_move("counter", "boardB")
        for move in coordinator.watch_move(move.id):
            print(move.phase, move.progress.percent)

``CoordinatorClient.from_config(load_client_config())`` does what the CLI does.
"""

from __future__ import annotations

from typing import Iterator

import grpc

from . import rpc
from .config import ClientConfig
from .security.identity import COORDINATOR, Identity
from .security.tls import (TlsConfig, channel_credentials, check_plaintext_allowed,
                           target_name_options)
from .v1 import coordinator_pb2 as pb
from .v1 import coordinator_pb2_grpc as pb_grpc
from .v1 import resources_pb2 as res

__all__ = ["CoordinatorClient", "DEFAULT_TIMEOUT", "TRANSFER_TIMEOUT"]

#: Deadline of a quick call (listing, starting, cancelling): it only waits on
#: the coordinator and at most one agent round trip.
DEFAULT_TIMEOUT = 30.0
#: Deadline of a call that carries a whole checkpoint over a board's UART
#: (checkpoint, restore, verify): at 115200 baud 8 MiB take about 12 minutes.
TRANSFER_TIMEOUT = 1800.0
#: Pages fetched per List* call when the caller pages for us.
PAGE_SIZE = 100


class CoordinatorClient:
    """A channel to the coordinator at ``address`` (host:port).

    Args:
        address: the coordinator's gRPC address.
        timeout: deadline of each quick call, in seconds.
        transfer_timeout: deadline of calls that move a checkpoint over a UART.
        tls: this client's certificate, key and CA: mutual TLS. None: plaintext,
            which only a loopback ``address`` may use (PlaintextRefused otherwise).
        server_identity: the identity the coordinator's certificate must prove.

    Every method raises ``migrate.errors.MigrateError`` subclasses (or the
    genode_cr error a board reported), never ``grpc.RpcError``; an unreachable
    coordinator is ``Unavailable``.
    """

    def __init__(self, address: str, *, timeout: float = DEFAULT_TIMEOUT,
                 transfer_timeout: float = TRANSFER_TIMEOUT, tls: TlsConfig | None = None,
                 server_identity: Identity = COORDINATOR):
        self.address = address
        self.timeout = timeout
        self.transfer_timeout = max(transfer_timeout, timeout)
        self.tls = tls
        if tls is None:
            check_plaintext_allowed(address, "to talk plaintext gRPC to the coordinator")
            self._channel = grpc.insecure_channel(address, options=rpc.CHANNEL_OPTIONS)
        else:
            self._channel = grpc.secure_channel(
                address, channel_credentials(tls),
                options=rpc.CHANNEL_OPTIONS + target_name_options(server_identity))
        self._stub = pb_grpc.CoordinatorServiceStub(self._channel)

    @classmethod
    def from_config(cls, config: ClientConfig, **kwargs: object) -> CoordinatorClient:
        """The coordinator, TLS files and server identity of a client configuration."""
        return cls(config.coordinator, tls=config.tls,
                   server_identity=config.coordinator_identity, **kwargs)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<CoordinatorClient {self.address}>"

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> CoordinatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the edge ---------------------------------------------------------------------

    def _call(self, method: str, request: object, timeout: float | None = None) -> object:
        with rpc.client_errors(self.address):
            return getattr(self._stub, method)(request, timeout=timeout or self.timeout)

    def _stream(self, method: str, request: object, timeout: float | None) -> Iterator[object]:
        """The responses of a server stream; leaving the loop early cancels the call."""
        call = getattr(self._stub, method)(request, timeout=timeout)
        try:
            with rpc.client_errors(self.address):
                yield from call
        finally:
            call.cancel()

    def _pages(self, method: str, request: pb.ListMovesRequest | pb.ListCheckpointsRequest
               | pb.ListAuditEventsRequest,
               field: str, limit: int | None) -> list:
        items: list = []
        while limit is None or len(items) < limit:
            request.page_size = min(PAGE_SIZE, limit - len(items)) if limit else PAGE_SIZE
            response = self._call(method, request)
            items.extend(getattr(response, field))
            if not response.next_page_token:         # type: ignore[attr-defined]
                break
            request.page_token = response.next_page_token  # type: ignore[attr-defined]
        return items[:limit] if limit else items

    # --- boards and components ----------------------------------------------------------

    def list_boards(self) -> list[res.Board]:
        return list(self._call("ListBoards", pb.ListBoardsRequest()).boards)

    def list_components(self, board: str = "") -> pb.ListComponentsResponse:
        """The components (on ``board``, or everywhere) and the boards that did not answer."""
        return self._call("ListComponents", pb.ListComponentsRequest(board=board))

    def start_component(self, name: str, board: str, *, rom: str = "", ram_quota_bytes: int = 0,
                        cap_quota: int = 0, config: str = "") -> res.Component:
        request = pb.StartComponentRequest(name=name, rom=rom, board=board,
                                           ram_quota_bytes=ram_quota_bytes, cap_quota=cap_quota,
                                           config=config)
        return self._call("StartComponent", request).component

    def kill_component(self, name: str) -> None:
        self._call("KillComponent", pb.KillComponentRequest(name=name))

    def stream_logs(self, name: str, *, follow: bool = False, tail: int = 0
                    ) -> Iterator[res.LogLine]:
        """The component's log lines; with ``follow``, new ones until the caller stops."""
        request = pb.StreamLogsRequest(name=name, follow=follow, tail=tail)
        # A followed log has no end, so no deadline; a snapshot has the usual one.
        for response in self._stream("StreamLogs", request, None if follow else self.timeout):
            yield from response.lines

    # --- moves --------------------------------------------------------------------------

    def plan_move(self, component: str, target_board: str, *, source_board: str = "",
                  options: res.MoveOptions | None = None) -> res.MovePlan:
        request = pb.PlanMoveRequest(component=component, source_board=source_board,
                                     target_board=target_board, options=options)
        return self._call("PlanMove", request).plan

    def create_move(self, component: str, target_board: str, *, source_board: str = "",
                    options: res.MoveOptions | None = None) -> res.Move:
        """Starts a move and returns it at once (AlreadyMoving if one runs)."""
        request = pb.CreateMoveRequest(component=component, source_board=source_board,
                                       target_board=target_board, options=options)
        return self._call("CreateMove", request).move

    def get_move(self, move_id: str) -> res.Move:
        return self._call("GetMove", pb.GetMoveRequest(id=move_id)).move

    def list_moves(self, component: str = "", *, limit: int | None = None) -> list[res.Move]:
        """Moves, newest first as the coordinator orders them, at most ``limit``."""
        return self._pages("ListMoves", pb.ListMovesRequest(component=component), "moves", limit)

    def watch_move(self, move_id: str) -> Iterator[res.Move]:
        """The move now, then at every change, until it ends (no deadline: it ends)."""
        for response in self._stream("WatchMove", pb.WatchMoveRequest(id=move_id), None):
            yield response.move

    def cancel_move(self, move_id: str) -> res.Move:
        return self._call("CancelMove", pb.CancelMoveRequest(id=move_id)).move

    # --- checkpoints --------------------------------------------------------------------

    def create_checkpoint(self, component: str, *, full: bool = False) -> res.StoredCheckpoint:
        request = pb.CreateCheckpointRequest(component=component, full=full)
        return self._call("CreateCheckpoint", request, self.transfer_timeout).checkpoint

    def list_checkpoints(self, component: str = "", *, limit: int | None = None
                         ) -> list[res.StoredCheckpoint]:
        return self._pages("ListCheckpoints", pb.ListCheckpointsRequest(component=component),
                           "checkpoints", limit)

    def get_checkpoint(self, checkpoint_id: str) -> pb.GetCheckpointResponse:
        """The stored checkpoint and its manifest."""
        return self._call("GetCheckpoint", pb.GetCheckpointRequest(id=checkpoint_id))

    def verify_checkpoint(self, checkpoint_id: str) -> pb.VerifyCheckpointResponse:
        return self._call("VerifyCheckpoint", pb.VerifyCheckpointRequest(id=checkpoint_id),
                          self.transfer_timeout)

    def delete_checkpoint(self, checkpoint_id: str) -> pb.DeleteCheckpointResponse:
        return self._call("DeleteCheckpoint", pb.DeleteCheckpointRequest(id=checkpoint_id))

    def restore_checkpoint(self, checkpoint_id: str, target_board: str, *, name: str = ""
                           ) -> pb.RestoreCheckpointResponse:
        request = pb.RestoreCheckpointRequest(id=checkpoint_id, target_board=target_board,
                                              name=name)
        return self._call("RestoreCheckpoint", request, self.transfer_timeout)

    # --- the audit log ------------------------------------------------------------------

    def list_audit_events(self, *, identity: str = "", method: str = "",
                          since: float | None = None, limit: int | None = None
                          ) -> list[pb.AuditEvent]:
        """Audit events, newest first, at most ``limit``; ``since``: unix time."""
        request = pb.ListAuditEventsRequest(identity=identity, method=method)
        if since is not None:
            request.since.FromNanoseconds(int(since * 1e9))
        return self._pages("ListAuditEvents", request, "events", limit)

    def verify_audit_log(self) -> pb.VerifyAuditLogResponse:
        return self._call("VerifyAuditLog", pb.VerifyAuditLogRequest(), self.transfer_timeout)
