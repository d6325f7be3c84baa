import datetime

from genode_cr.v1 import board_pb2 as _board_pb2
from genode_cr.v1 import checkpoint_pb2 as _checkpoint_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from migrate.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListBoardsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListBoardsResponse(_message.Message):
    __slots__ = ("boards",)
    BOARDS_FIELD_NUMBER: _ClassVar[int]
    boards: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Board]
    def __init__(self, boards: _Optional[_Iterable[_Union[_resources_pb2.Board, _Mapping]]] = ...) -> None: ...

class ListComponentsRequest(_message.Message):
    __slots__ = ("board",)
    BOARD_FIELD_NUMBER: _ClassVar[int]
    board: str
    def __init__(self, board: _Optional[str] = ...) -> None: ...

class ListComponentsResponse(_message.Message):
    __slots__ = ("components", "unreachable_boards")
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    UNREACHABLE_BOARDS_FIELD_NUMBER: _ClassVar[int]
    components: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Component]
    unreachable_boards: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, components: _Optional[_Iterable[_Union[_resources_pb2.Component, _Mapping]]] = ..., unreachable_boards: _Optional[_Iterable[str]] = ...) -> None: ...

class StartComponentRequest(_message.Message):
    __slots__ = ("name", "rom", "board", "ram_quota_bytes", "cap_quota", "config")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROM_FIELD_NUMBER: _ClassVar[int]
    BOARD_FIELD_NUMBER: _ClassVar[int]
    RAM_QUOTA_BYTES_FIELD_NUMBER: _ClassVar[int]
    CAP_QUOTA_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    name: str
    rom: str
    board: str
    ram_quota_bytes: int
    cap_quota: int
    config: str
    def __init__(self, name: _Optional[str] = ..., rom: _Optional[str] = ..., board: _Optional[str] = ..., ram_quota_bytes: _Optional[int] = ..., cap_quota: _Optional[int] = ..., config: _Optional[str] = ...) -> None: ...

class StartComponentResponse(_message.Message):
    __slots__ = ("component",)
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    component: _resources_pb2.Component
    def __init__(self, component: _Optional[_Union[_resources_pb2.Component, _Mapping]] = ...) -> None: ...

class KillComponentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class KillComponentResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StreamLogsRequest(_message.Message):
    __slots__ = ("name", "follow", "tail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    follow: bool
    tail: int
    def __init__(self, name: _Optional[str] = ..., follow: _Optional[bool] = ..., tail: _Optional[int] = ...) -> None: ...

class StreamLogsResponse(_message.Message):
    __slots__ = ("lines",)
    LINES_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[_resources_pb2.LogLine]
    def __init__(self, lines: _Optional[_Iterable[_Union[_resources_pb2.LogLine, _Mapping]]] = ...) -> None: ...

class PlanMoveRequest(_message.Message):
    __slots__ = ("component", "source_board", "target_board", "options")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_BOARD_FIELD_NUMBER: _ClassVar[int]
    TARGET_BOARD_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    component: str
    source_board: str
    target_board: str
    options: _resources_pb2.MoveOptions
    def __init__(self, component: _Optional[str] = ..., source_board: _Optional[str] = ..., target_board: _Optional[str] = ..., options: _Optional[_Union[_resources_pb2.MoveOptions, _Mapping]] = ...) -> None: ...

class PlanMoveResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: _resources_pb2.MovePlan
    def __init__(self, plan: _Optional[_Union[_resources_pb2.MovePlan, _Mapping]] = ...) -> None: ...

class CreateMoveRequest(_message.Message):
    __slots__ = ("component", "source_board", "target_board", "options")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_BOARD_FIELD_NUMBER: _ClassVar[int]
    TARGET_BOARD_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    component: str
    source_board: str
    target_board: str
    options: _resources_pb2.MoveOptions
    def __init__(self, component: _Optional[str] = ..., source_board: _Optional[str] = ..., target_board: _Optional[str] = ..., options: _Optional[_Union[_resources_pb2.MoveOptions, _Mapping]] = ...) -> None: ...

class CreateMoveResponse(_message.Message):
    __slots__ = ("move",)
    MOVE_FIELD_NUMBER: _ClassVar[int]
    move: _resources_pb2.Move
    def __init__(self, move: _Optional[_Union[_resources_pb2.Move, _Mapping]] = ...) -> None: ...

class GetMoveRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetMoveResponse(_message.Message):
    __slots__ = ("move",)
    MOVE_FIELD_NUMBER: _ClassVar[int]
    move: _resources_pb2.Move
    def __init__(self, move: _Optional[_Union[_resources_pb2.Move, _Mapping]] = ...) -> None: ...

class ListMovesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "component")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    component: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., component: _Optional[str] = ...) -> None: ...

class ListMovesResponse(_message.Message):
    __slots__ = ("moves", "next_page_token")
    MOVES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    moves: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Move]
    next_page_token: str
    def __init__(self, moves: _Optional[_Iterable[_Union[_resources_pb2.Move, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchMoveRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class WatchMoveResponse(_message.Message):
    __slots__ = ("move",)
    MOVE_FIELD_NUMBER: _ClassVar[int]
    move: _resources_pb2.Move
    def __init__(self, move: _Optional[_Union[_resources_pb2.Move, _Mapping]] = ...) -> None: ...

class CancelMoveRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class CancelMoveResponse(_message.Message):
    __slots__ = ("move",)
    MOVE_FIELD_NUMBER: _ClassVar[int]
    move: _resources_pb2.Move
    def __init__(self, move: _Optional[_Union[_resources_pb2.Move, _Mapping]] = ...) -> None: ...

class CreateCheckpointRequest(_message.Message):
    __slots__ = ("component", "full")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    component: str
    full: bool
    def __init__(self, component: _Optional[str] = ..., full: _Optional[bool] = ...) -> None: ...

class CreateCheckpointResponse(_message.Message):
    __slots__ = ("checkpoint",)
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    checkpoint: _resources_pb2.StoredCheckpoint
    def __init__(self, checkpoint: _Optional[_Union[_resources_pb2.StoredCheckpoint, _Mapping]] = ...) -> None: ...

class ListCheckpointsRequest(_message.Message):
    __slots__ = ("component", "page_size", "page_token")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    component: str
    page_size: int
    page_token: str
    def __init__(self, component: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCheckpointsResponse(_message.Message):
    __slots__ = ("checkpoints", "next_page_token")
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    checkpoints: _containers.RepeatedCompositeFieldContainer[_resources_pb2.StoredCheckpoint]
    next_page_token: str
    def __init__(self, checkpoints: _Optional[_Iterable[_Union[_resources_pb2.StoredCheckpoint, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetCheckpointRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetCheckpointResponse(_message.Message):
    __slots__ = ("checkpoint", "manifest")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    checkpoint: _resources_pb2.StoredCheckpoint
    manifest: _checkpoint_pb2.Manifest
    def __init__(self, checkpoint: _Optional[_Union[_resources_pb2.StoredCheckpoint, _Mapping]] = ..., manifest: _Optional[_Union[_checkpoint_pb2.Manifest, _Mapping]] = ...) -> None: ...

class VerifyCheckpointRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class VerifyCheckpointResponse(_message.Message):
    __slots__ = ("ok", "detail", "chain_length", "pages_checked")
    OK_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    CHAIN_LENGTH_FIELD_NUMBER: _ClassVar[int]
    PAGES_CHECKED_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    detail: str
    chain_length: int
    pages_checked: int
    def __init__(self, ok: _Optional[bool] = ..., detail: _Optional[str] = ..., chain_length: _Optional[int] = ..., pages_checked: _Optional[int] = ...) -> None: ...

class DeleteCheckpointRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteCheckpointResponse(_message.Message):
    __slots__ = ("deleted", "freed_bytes")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    FREED_BYTES_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    freed_bytes: int
    def __init__(self, deleted: _Optional[int] = ..., freed_bytes: _Optional[int] = ...) -> None: ...

class RestoreCheckpointRequest(_message.Message):
    __slots__ = ("id", "target_board", "name")
    ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_BOARD_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    target_board: str
    name: str
    def __init__(self, id: _Optional[str] = ..., target_board: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class RestoreCheckpointResponse(_message.Message):
    __slots__ = ("component", "report")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    component: _resources_pb2.Component
    report: _board_pb2.RestoreReport
    def __init__(self, component: _Optional[_Union[_resources_pb2.Component, _Mapping]] = ..., report: _Optional[_Union[_board_pb2.RestoreReport, _Mapping]] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("seq", "time", "identity", "peer", "method", "arguments", "outcome", "detail", "resource", "hash")
    class ArgumentsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    seq: int
    time: _timestamp_pb2.Timestamp
    identity: str
    peer: str
    method: str
    arguments: _containers.ScalarMap[str, str]
    outcome: str
    detail: str
    resource: str
    hash: bytes
    def __init__(self, seq: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., identity: _Optional[str] = ..., peer: _Optional[str] = ..., method: _Optional[str] = ..., arguments: _Optional[_Mapping[str, str]] = ..., outcome: _Optional[str] = ..., detail: _Optional[str] = ..., resource: _Optional[str] = ..., hash: _Optional[bytes] = ...) -> None: ...

class ListAuditEventsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "identity", "method", "since")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    identity: str
    method: str
    since: _timestamp_pb2.Timestamp
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., identity: _Optional[str] = ..., method: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListAuditEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class VerifyAuditLogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VerifyAuditLogResponse(_message.Message):
    __slots__ = ("ok", "events", "first_broken_seq", "detail", "head_seq", "head_hash")
    OK_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    FIRST_BROKEN_SEQ_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    events: int
    first_broken_seq: int
    detail: str
    head_seq: int
    head_hash: bytes
    def __init__(self, ok: _Optional[bool] = ..., events: _Optional[int] = ..., first_broken_seq: _Optional[int] = ..., detail: _Optional[str] = ..., head_seq: _Optional[int] = ..., head_hash: _Optional[bytes] = ...) -> None: ...
