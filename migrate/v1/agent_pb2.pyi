from genode_cr.v1 import board_pb2 as _board_pb2
from genode_cr.v1 import checkpoint_pb2 as _checkpoint_pb2
from migrate.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentServiceGetBoardRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AgentServiceGetBoardResponse(_message.Message):
    __slots__ = ("board",)
    BOARD_FIELD_NUMBER: _ClassVar[int]
    board: _resources_pb2.Board
    def __init__(self, board: _Optional[_Union[_resources_pb2.Board, _Mapping]] = ...) -> None: ...

class AgentServiceListComponentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AgentServiceListComponentsResponse(_message.Message):
    __slots__ = ("components",)
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    components: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Component]
    def __init__(self, components: _Optional[_Iterable[_Union[_resources_pb2.Component, _Mapping]]] = ...) -> None: ...

class AgentServiceStartComponentRequest(_message.Message):
    __slots__ = ("name", "rom", "ram_quota_bytes", "cap_quota", "generation", "config")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROM_FIELD_NUMBER: _ClassVar[int]
    RAM_QUOTA_BYTES_FIELD_NUMBER: _ClassVar[int]
    CAP_QUOTA_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    name: str
    rom: str
    ram_quota_bytes: int
    cap_quota: int
    generation: int
    config: str
    def __init__(self, name: _Optional[str] = ..., rom: _Optional[str] = ..., ram_quota_bytes: _Optional[int] = ..., cap_quota: _Optional[int] = ..., generation: _Optional[int] = ..., config: _Optional[str] = ...) -> None: ...

class AgentServiceStartComponentResponse(_message.Message):
    __slots__ = ("component",)
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    component: _resources_pb2.Component
    def __init__(self, component: _Optional[_Union[_resources_pb2.Component, _Mapping]] = ...) -> None: ...

class AgentServicePauseComponentRequest(_message.Message):
    __slots__ = ("name", "generation")
    NAME_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    generation: int
    def __init__(self, name: _Optional[str] = ..., generation: _Optional[int] = ...) -> None: ...

class AgentServicePauseComponentResponse(_message.Message):
    __slots__ = ("component",)
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    component: _resources_pb2.Component
    def __init__(self, component: _Optional[_Union[_resources_pb2.Component, _Mapping]] = ...) -> None: ...

class AgentServiceResumeComponentRequest(_message.Message):
    __slots__ = ("name", "generation")
    NAME_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    generation: int
    def __init__(self, name: _Optional[str] = ..., generation: _Optional[int] = ...) -> None: ...

class AgentServiceResumeComponentResponse(_message.Message):
    __slots__ = ("component",)
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    component: _resources_pb2.Component
    def __init__(self, component: _Optional[_Union[_resources_pb2.Component, _Mapping]] = ...) -> None: ...

class AgentServiceKillComponentRequest(_message.Message):
    __slots__ = ("name", "generation")
    NAME_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    generation: int
    def __init__(self, name: _Optional[str] = ..., generation: _Optional[int] = ...) -> None: ...

class AgentServiceKillComponentResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AgentServiceStreamLogsRequest(_message.Message):
    __slots__ = ("name", "from_index", "follow")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FROM_INDEX_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    name: str
    from_index: int
    follow: bool
    def __init__(self, name: _Optional[str] = ..., from_index: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class AgentServiceStreamLogsResponse(_message.Message):
    __slots__ = ("lines", "next_index")
    LINES_FIELD_NUMBER: _ClassVar[int]
    NEXT_INDEX_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[_resources_pb2.LogLine]
    next_index: int
    def __init__(self, lines: _Optional[_Iterable[_Union[_resources_pb2.LogLine, _Mapping]]] = ..., next_index: _Optional[int] = ...) -> None: ...

class AgentServiceCheckpointRequest(_message.Message):
    __slots__ = ("name", "since_id", "freeze", "generation", "resume_id", "resume_from_part")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SINCE_ID_FIELD_NUMBER: _ClassVar[int]
    FREEZE_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    RESUME_ID_FIELD_NUMBER: _ClassVar[int]
    RESUME_FROM_PART_FIELD_NUMBER: _ClassVar[int]
    name: str
    since_id: str
    freeze: bool
    generation: int
    resume_id: str
    resume_from_part: int
    def __init__(self, name: _Optional[str] = ..., since_id: _Optional[str] = ..., freeze: _Optional[bool] = ..., generation: _Optional[int] = ..., resume_id: _Optional[str] = ..., resume_from_part: _Optional[int] = ...) -> None: ...

class AgentServiceCheckpointResponse(_message.Message):
    __slots__ = ("start", "pages", "end", "signature")
    START_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    start: _board_pb2.CheckpointStart
    pages: _board_pb2.PageChunk
    end: _board_pb2.CheckpointEnd
    signature: _resources_pb2.CheckpointSignature
    def __init__(self, start: _Optional[_Union[_board_pb2.CheckpointStart, _Mapping]] = ..., pages: _Optional[_Union[_board_pb2.PageChunk, _Mapping]] = ..., end: _Optional[_Union[_board_pb2.CheckpointEnd, _Mapping]] = ..., signature: _Optional[_Union[_resources_pb2.CheckpointSignature, _Mapping]] = ...) -> None: ...

class AgentServiceBeginRestoreRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class AgentServiceBeginRestoreResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: int
    def __init__(self, session: _Optional[int] = ...) -> None: ...

class AgentServiceStageCheckpointRequest(_message.Message):
    __slots__ = ("session", "start", "pages", "end", "resume_from_part", "signature", "root_digest")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    RESUME_FROM_PART_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    ROOT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    session: int
    start: _board_pb2.CheckpointStart
    pages: _board_pb2.PageChunk
    end: _board_pb2.CheckpointEnd
    resume_from_part: int
    signature: _resources_pb2.CheckpointSignature
    root_digest: bytes
    def __init__(self, session: _Optional[int] = ..., start: _Optional[_Union[_board_pb2.CheckpointStart, _Mapping]] = ..., pages: _Optional[_Union[_board_pb2.PageChunk, _Mapping]] = ..., end: _Optional[_Union[_board_pb2.CheckpointEnd, _Mapping]] = ..., resume_from_part: _Optional[int] = ..., signature: _Optional[_Union[_resources_pb2.CheckpointSignature, _Mapping]] = ..., root_digest: _Optional[bytes] = ...) -> None: ...

class AgentServiceStageCheckpointResponse(_message.Message):
    __slots__ = ("rounds", "pages_written")
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    PAGES_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    rounds: int
    pages_written: int
    def __init__(self, rounds: _Optional[int] = ..., pages_written: _Optional[int] = ...) -> None: ...

class AgentServiceGetStageStatusRequest(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: int
    def __init__(self, session: _Optional[int] = ...) -> None: ...

class AgentServiceGetStageStatusResponse(_message.Message):
    __slots__ = ("session", "checkpoint_id", "parts", "last_staged_id", "rounds")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    LAST_STAGED_ID_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    session: int
    checkpoint_id: str
    parts: int
    last_staged_id: str
    rounds: int
    def __init__(self, session: _Optional[int] = ..., checkpoint_id: _Optional[str] = ..., parts: _Optional[int] = ..., last_staged_id: _Optional[str] = ..., rounds: _Optional[int] = ...) -> None: ...

class AgentServiceCommitRestoreRequest(_message.Message):
    __slots__ = ("session", "generation")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    session: int
    generation: int
    def __init__(self, session: _Optional[int] = ..., generation: _Optional[int] = ...) -> None: ...

class AgentServiceCommitRestoreResponse(_message.Message):
    __slots__ = ("report", "component")
    REPORT_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    report: _board_pb2.RestoreReport
    component: _resources_pb2.Component
    def __init__(self, report: _Optional[_Union[_board_pb2.RestoreReport, _Mapping]] = ..., component: _Optional[_Union[_resources_pb2.Component, _Mapping]] = ...) -> None: ...

class AgentServiceAbortRestoreRequest(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: int
    def __init__(self, session: _Optional[int] = ...) -> None: ...

class AgentServiceAbortRestoreResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
