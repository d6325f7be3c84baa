from genode_cr.v1 import checkpoint_pb2 as _checkpoint_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Hello(_message.Message):
    __slots__ = ("protocol_version", "client")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    client: str
    def __init__(self, protocol_version: _Optional[int] = ..., client: _Optional[str] = ...) -> None: ...

class RomInfo(_message.Message):
    __slots__ = ("name", "digest", "size")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    name: str
    digest: bytes
    size: int
    def __init__(self, name: _Optional[str] = ..., digest: _Optional[bytes] = ..., size: _Optional[int] = ...) -> None: ...

class BoardInfo(_message.Message):
    __slots__ = ("protocol_version", "name", "arch", "kernel", "ram_total", "ram_free", "caps_total", "caps_free", "roms", "board_time_us", "baud")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    KERNEL_FIELD_NUMBER: _ClassVar[int]
    RAM_TOTAL_FIELD_NUMBER: _ClassVar[int]
    RAM_FREE_FIELD_NUMBER: _ClassVar[int]
    CAPS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CAPS_FREE_FIELD_NUMBER: _ClassVar[int]
    ROMS_FIELD_NUMBER: _ClassVar[int]
    BOARD_TIME_US_FIELD_NUMBER: _ClassVar[int]
    BAUD_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    name: str
    arch: str
    kernel: str
    ram_total: int
    ram_free: int
    caps_total: int
    caps_free: int
    roms: _containers.RepeatedCompositeFieldContainer[RomInfo]
    board_time_us: int
    baud: int
    def __init__(self, protocol_version: _Optional[int] = ..., name: _Optional[str] = ..., arch: _Optional[str] = ..., kernel: _Optional[str] = ..., ram_total: _Optional[int] = ..., ram_free: _Optional[int] = ..., caps_total: _Optional[int] = ..., caps_free: _Optional[int] = ..., roms: _Optional[_Iterable[_Union[RomInfo, _Mapping]]] = ..., board_time_us: _Optional[int] = ..., baud: _Optional[int] = ...) -> None: ...

class ComponentInfo(_message.Message):
    __slots__ = ("name", "rom", "state", "ram_quota", "ram_used", "cap_quota", "cap_used", "threads")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROM_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RAM_QUOTA_FIELD_NUMBER: _ClassVar[int]
    RAM_USED_FIELD_NUMBER: _ClassVar[int]
    CAP_QUOTA_FIELD_NUMBER: _ClassVar[int]
    CAP_USED_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    name: str
    rom: str
    state: str
    ram_quota: int
    ram_used: int
    cap_quota: int
    cap_used: int
    threads: int
    def __init__(self, name: _Optional[str] = ..., rom: _Optional[str] = ..., state: _Optional[str] = ..., ram_quota: _Optional[int] = ..., ram_used: _Optional[int] = ..., cap_quota: _Optional[int] = ..., cap_used: _Optional[int] = ..., threads: _Optional[int] = ...) -> None: ...

class ComponentList(_message.Message):
    __slots__ = ("components",)
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    components: _containers.RepeatedCompositeFieldContainer[ComponentInfo]
    def __init__(self, components: _Optional[_Iterable[_Union[ComponentInfo, _Mapping]]] = ...) -> None: ...

class StartRequest(_message.Message):
    __slots__ = ("name", "rom", "ram_quota", "cap_quota", "config")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROM_FIELD_NUMBER: _ClassVar[int]
    RAM_QUOTA_FIELD_NUMBER: _ClassVar[int]
    CAP_QUOTA_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    name: str
    rom: str
    ram_quota: int
    cap_quota: int
    config: str
    def __init__(self, name: _Optional[str] = ..., rom: _Optional[str] = ..., ram_quota: _Optional[int] = ..., cap_quota: _Optional[int] = ..., config: _Optional[str] = ...) -> None: ...

class ComponentRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class LogsRequest(_message.Message):
    __slots__ = ("name", "from_index", "follow")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FROM_INDEX_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    name: str
    from_index: int
    follow: bool
    def __init__(self, name: _Optional[str] = ..., from_index: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ("time_us", "text")
    TIME_US_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    time_us: int
    text: str
    def __init__(self, time_us: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class LogLines(_message.Message):
    __slots__ = ("lines", "next_index")
    LINES_FIELD_NUMBER: _ClassVar[int]
    NEXT_INDEX_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[LogLine]
    next_index: int
    def __init__(self, lines: _Optional[_Iterable[_Union[LogLine, _Mapping]]] = ..., next_index: _Optional[int] = ...) -> None: ...

class CheckpointRequest(_message.Message):
    __slots__ = ("name", "since_id", "freeze", "resume_id", "from_part")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SINCE_ID_FIELD_NUMBER: _ClassVar[int]
    FREEZE_FIELD_NUMBER: _ClassVar[int]
    RESUME_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_PART_FIELD_NUMBER: _ClassVar[int]
    name: str
    since_id: str
    freeze: bool
    resume_id: str
    from_part: int
    def __init__(self, name: _Optional[str] = ..., since_id: _Optional[str] = ..., freeze: _Optional[bool] = ..., resume_id: _Optional[str] = ..., from_part: _Optional[int] = ...) -> None: ...

class CheckpointStart(_message.Message):
    __slots__ = ("manifest", "page_count", "page_bytes", "root_digest")
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    PAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    PAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    ROOT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    manifest: _checkpoint_pb2.Manifest
    page_count: int
    page_bytes: int
    root_digest: bytes
    def __init__(self, manifest: _Optional[_Union[_checkpoint_pb2.Manifest, _Mapping]] = ..., page_count: _Optional[int] = ..., page_bytes: _Optional[int] = ..., root_digest: _Optional[bytes] = ...) -> None: ...

class PageChunk(_message.Message):
    __slots__ = ("pages",)
    PAGES_FIELD_NUMBER: _ClassVar[int]
    pages: _containers.RepeatedCompositeFieldContainer[_checkpoint_pb2.Page]
    def __init__(self, pages: _Optional[_Iterable[_Union[_checkpoint_pb2.Page, _Mapping]]] = ...) -> None: ...

class CheckpointEnd(_message.Message):
    __slots__ = ("root_digest",)
    ROOT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    root_digest: bytes
    def __init__(self, root_digest: _Optional[bytes] = ...) -> None: ...

class RestoreBegin(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RestoreSession(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: int
    def __init__(self, session: _Optional[int] = ...) -> None: ...

class StageStart(_message.Message):
    __slots__ = ("session", "checkpoint")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    session: int
    checkpoint: CheckpointStart
    def __init__(self, session: _Optional[int] = ..., checkpoint: _Optional[_Union[CheckpointStart, _Mapping]] = ...) -> None: ...

class StagePages(_message.Message):
    __slots__ = ("session", "chunk")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    session: int
    chunk: PageChunk
    def __init__(self, session: _Optional[int] = ..., chunk: _Optional[_Union[PageChunk, _Mapping]] = ...) -> None: ...

class StageEnd(_message.Message):
    __slots__ = ("session", "end")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    session: int
    end: CheckpointEnd
    def __init__(self, session: _Optional[int] = ..., end: _Optional[_Union[CheckpointEnd, _Mapping]] = ...) -> None: ...

class StageStatus(_message.Message):
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

class StageDone(_message.Message):
    __slots__ = ("rounds", "pages_written")
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    PAGES_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    rounds: int
    pages_written: int
    def __init__(self, rounds: _Optional[int] = ..., pages_written: _Optional[int] = ...) -> None: ...

class Translation(_message.Message):
    __slots__ = ("kind", "old_badge", "new_badge", "kcap")
    KIND_FIELD_NUMBER: _ClassVar[int]
    OLD_BADGE_FIELD_NUMBER: _ClassVar[int]
    NEW_BADGE_FIELD_NUMBER: _ClassVar[int]
    KCAP_FIELD_NUMBER: _ClassVar[int]
    kind: str
    old_badge: int
    new_badge: int
    kcap: int
    def __init__(self, kind: _Optional[str] = ..., old_badge: _Optional[int] = ..., new_badge: _Optional[int] = ..., kcap: _Optional[int] = ...) -> None: ...

class RestoreReport(_message.Message):
    __slots__ = ("component", "checkpoint_id", "chain_length", "rounds", "translations", "caps_installed", "cap_map_entries_translated", "cap_map_entries_unknown", "parent_cap_rewritten", "dataspaces", "pages_written", "bytes_written", "threads", "irqs_rebound", "rpc_gates", "timers_rearmed", "steps", "skipped")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    CHAIN_LENGTH_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    TRANSLATIONS_FIELD_NUMBER: _ClassVar[int]
    CAPS_INSTALLED_FIELD_NUMBER: _ClassVar[int]
    CAP_MAP_ENTRIES_TRANSLATED_FIELD_NUMBER: _ClassVar[int]
    CAP_MAP_ENTRIES_UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    PARENT_CAP_REWRITTEN_FIELD_NUMBER: _ClassVar[int]
    DATASPACES_FIELD_NUMBER: _ClassVar[int]
    PAGES_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    BYTES_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    IRQS_REBOUND_FIELD_NUMBER: _ClassVar[int]
    RPC_GATES_FIELD_NUMBER: _ClassVar[int]
    TIMERS_REARMED_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    component: str
    checkpoint_id: str
    chain_length: int
    rounds: int
    translations: _containers.RepeatedCompositeFieldContainer[Translation]
    caps_installed: int
    cap_map_entries_translated: int
    cap_map_entries_unknown: int
    parent_cap_rewritten: bool
    dataspaces: int
    pages_written: int
    bytes_written: int
    threads: int
    irqs_rebound: int
    rpc_gates: int
    timers_rearmed: int
    steps: _containers.RepeatedScalarFieldContainer[str]
    skipped: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, component: _Optional[str] = ..., checkpoint_id: _Optional[str] = ..., chain_length: _Optional[int] = ..., rounds: _Optional[int] = ..., translations: _Optional[_Iterable[_Union[Translation, _Mapping]]] = ..., caps_installed: _Optional[int] = ..., cap_map_entries_translated: _Optional[int] = ..., cap_map_entries_unknown: _Optional[int] = ..., parent_cap_rewritten: _Optional[bool] = ..., dataspaces: _Optional[int] = ..., pages_written: _Optional[int] = ..., bytes_written: _Optional[int] = ..., threads: _Optional[int] = ..., irqs_rebound: _Optional[int] = ..., rpc_gates: _Optional[int] = ..., timers_rearmed: _Optional[int] = ..., steps: _Optional[_Iterable[str]] = ..., skipped: _Optional[_Iterable[str]] = ...) -> None: ...

class Cancel(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    def __init__(self, request_id: _Optional[int] = ...) -> None: ...

class ErrorReply(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Request(_message.Message):
    __slots__ = ("id", "hello", "list_components", "start", "pause", "resume", "kill", "logs", "checkpoint", "restore_begin", "stage_start", "stage_pages", "stage_end", "restore_commit", "restore_abort", "cancel", "stage_status")
    ID_FIELD_NUMBER: _ClassVar[int]
    HELLO_FIELD_NUMBER: _ClassVar[int]
    LIST_COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    PAUSE_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    KILL_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    RESTORE_BEGIN_FIELD_NUMBER: _ClassVar[int]
    STAGE_START_FIELD_NUMBER: _ClassVar[int]
    STAGE_PAGES_FIELD_NUMBER: _ClassVar[int]
    STAGE_END_FIELD_NUMBER: _ClassVar[int]
    RESTORE_COMMIT_FIELD_NUMBER: _ClassVar[int]
    RESTORE_ABORT_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    STAGE_STATUS_FIELD_NUMBER: _ClassVar[int]
    id: int
    hello: Hello
    list_components: Empty
    start: StartRequest
    pause: ComponentRequest
    resume: ComponentRequest
    kill: ComponentRequest
    logs: LogsRequest
    checkpoint: CheckpointRequest
    restore_begin: RestoreBegin
    stage_start: StageStart
    stage_pages: StagePages
    stage_end: StageEnd
    restore_commit: RestoreSession
    restore_abort: RestoreSession
    cancel: Cancel
    stage_status: RestoreSession
    def __init__(self, id: _Optional[int] = ..., hello: _Optional[_Union[Hello, _Mapping]] = ..., list_components: _Optional[_Union[Empty, _Mapping]] = ..., start: _Optional[_Union[StartRequest, _Mapping]] = ..., pause: _Optional[_Union[ComponentRequest, _Mapping]] = ..., resume: _Optional[_Union[ComponentRequest, _Mapping]] = ..., kill: _Optional[_Union[ComponentRequest, _Mapping]] = ..., logs: _Optional[_Union[LogsRequest, _Mapping]] = ..., checkpoint: _Optional[_Union[CheckpointRequest, _Mapping]] = ..., restore_begin: _Optional[_Union[RestoreBegin, _Mapping]] = ..., stage_start: _Optional[_Union[StageStart, _Mapping]] = ..., stage_pages: _Optional[_Union[StagePages, _Mapping]] = ..., stage_end: _Optional[_Union[StageEnd, _Mapping]] = ..., restore_commit: _Optional[_Union[RestoreSession, _Mapping]] = ..., restore_abort: _Optional[_Union[RestoreSession, _Mapping]] = ..., cancel: _Optional[_Union[Cancel, _Mapping]] = ..., stage_status: _Optional[_Union[RestoreSession, _Mapping]] = ...) -> None: ...

class Response(_message.Message):
    __slots__ = ("id", "last", "error", "board_info", "components", "component", "log_lines", "checkpoint_start", "pages", "checkpoint_end", "restore_session", "stage_done", "restore_report", "ok", "stage_status")
    ID_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    BOARD_INFO_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    LOG_LINES_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_START_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_END_FIELD_NUMBER: _ClassVar[int]
    RESTORE_SESSION_FIELD_NUMBER: _ClassVar[int]
    STAGE_DONE_FIELD_NUMBER: _ClassVar[int]
    RESTORE_REPORT_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    STAGE_STATUS_FIELD_NUMBER: _ClassVar[int]
    id: int
    last: bool
    error: ErrorReply
    board_info: BoardInfo
    components: ComponentList
    component: ComponentInfo
    log_lines: LogLines
    checkpoint_start: CheckpointStart
    pages: PageChunk
    checkpoint_end: CheckpointEnd
    restore_session: RestoreSession
    stage_done: StageDone
    restore_report: RestoreReport
    ok: Empty
    stage_status: StageStatus
    def __init__(self, id: _Optional[int] = ..., last: _Optional[bool] = ..., error: _Optional[_Union[ErrorReply, _Mapping]] = ..., board_info: _Optional[_Union[BoardInfo, _Mapping]] = ..., components: _Optional[_Union[ComponentList, _Mapping]] = ..., component: _Optional[_Union[ComponentInfo, _Mapping]] = ..., log_lines: _Optional[_Union[LogLines, _Mapping]] = ..., checkpoint_start: _Optional[_Union[CheckpointStart, _Mapping]] = ..., pages: _Optional[_Union[PageChunk, _Mapping]] = ..., checkpoint_end: _Optional[_Union[CheckpointEnd, _Mapping]] = ..., restore_session: _Optional[_Union[RestoreSession, _Mapping]] = ..., stage_done: _Optional[_Union[StageDone, _Mapping]] = ..., restore_report: _Optional[_Union[RestoreReport, _Mapping]] = ..., ok: _Optional[_Union[Empty, _Mapping]] = ..., stage_status: _Optional[_Union[StageStatus, _Mapping]] = ...) -> None: ...
