import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BoardHealth(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BOARD_HEALTH_UNSPECIFIED: _ClassVar[BoardHealth]
    BOARD_HEALTH_SERVING: _ClassVar[BoardHealth]
    BOARD_HEALTH_NOT_SERVING: _ClassVar[BoardHealth]
    BOARD_HEALTH_UNREACHABLE: _ClassVar[BoardHealth]

class MoveMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MOVE_MODE_UNSPECIFIED: _ClassVar[MoveMode]
    MOVE_MODE_LIVE: _ClassVar[MoveMode]
    MOVE_MODE_STOP_COPY: _ClassVar[MoveMode]

class OvershootPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OVERSHOOT_POLICY_UNSPECIFIED: _ClassVar[OvershootPolicy]
    OVERSHOOT_POLICY_ABORT: _ClassVar[OvershootPolicy]
    OVERSHOOT_POLICY_ACCEPT: _ClassVar[OvershootPolicy]

class MovePhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MOVE_PHASE_UNSPECIFIED: _ClassVar[MovePhase]
    MOVE_PHASE_PENDING: _ClassVar[MovePhase]
    MOVE_PHASE_PREFLIGHT: _ClassVar[MovePhase]
    MOVE_PHASE_PRE_COPY: _ClassVar[MovePhase]
    MOVE_PHASE_STOP_AND_COPY: _ClassVar[MovePhase]
    MOVE_PHASE_COMMIT: _ClassVar[MovePhase]
    MOVE_PHASE_CONFIRM: _ClassVar[MovePhase]
    MOVE_PHASE_DONE: _ClassVar[MovePhase]
    MOVE_PHASE_FAILED: _ClassVar[MovePhase]
    MOVE_PHASE_ROLLED_BACK: _ClassVar[MovePhase]
    MOVE_PHASE_CANCELLED: _ClassVar[MovePhase]

class Convergence(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONVERGENCE_UNSPECIFIED: _ClassVar[Convergence]
    CONVERGENCE_CONVERGING: _ClassVar[Convergence]
    CONVERGENCE_STALLED: _ClassVar[Convergence]
    CONVERGENCE_DIVERGING: _ClassVar[Convergence]
BOARD_HEALTH_UNSPECIFIED: BoardHealth
BOARD_HEALTH_SERVING: BoardHealth
BOARD_HEALTH_NOT_SERVING: BoardHealth
BOARD_HEALTH_UNREACHABLE: BoardHealth
MOVE_MODE_UNSPECIFIED: MoveMode
MOVE_MODE_LIVE: MoveMode
MOVE_MODE_STOP_COPY: MoveMode
OVERSHOOT_POLICY_UNSPECIFIED: OvershootPolicy
OVERSHOOT_POLICY_ABORT: OvershootPolicy
OVERSHOOT_POLICY_ACCEPT: OvershootPolicy
MOVE_PHASE_UNSPECIFIED: MovePhase
MOVE_PHASE_PENDING: MovePhase
MOVE_PHASE_PREFLIGHT: MovePhase
MOVE_PHASE_PRE_COPY: MovePhase
MOVE_PHASE_STOP_AND_COPY: MovePhase
MOVE_PHASE_COMMIT: MovePhase
MOVE_PHASE_CONFIRM: MovePhase
MOVE_PHASE_DONE: MovePhase
MOVE_PHASE_FAILED: MovePhase
MOVE_PHASE_ROLLED_BACK: MovePhase
MOVE_PHASE_CANCELLED: MovePhase
CONVERGENCE_UNSPECIFIED: Convergence
CONVERGENCE_CONVERGING: Convergence
CONVERGENCE_STALLED: Convergence
CONVERGENCE_DIVERGING: Convergence

class Rom(_message.Message):
    __slots__ = ("name", "digest", "size_bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    digest: bytes
    size_bytes: int
    def __init__(self, name: _Optional[str] = ..., digest: _Optional[bytes] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class Board(_message.Message):
    __slots__ = ("name", "agent_address", "health", "health_detail", "protocol_version", "arch", "kernel", "ram_total_bytes", "ram_free_bytes", "caps_total", "caps_free", "roms", "board_time_us", "baud")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AGENT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    HEALTH_DETAIL_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    KERNEL_FIELD_NUMBER: _ClassVar[int]
    RAM_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    RAM_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CAPS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CAPS_FREE_FIELD_NUMBER: _ClassVar[int]
    ROMS_FIELD_NUMBER: _ClassVar[int]
    BOARD_TIME_US_FIELD_NUMBER: _ClassVar[int]
    BAUD_FIELD_NUMBER: _ClassVar[int]
    name: str
    agent_address: str
    health: BoardHealth
    health_detail: str
    protocol_version: int
    arch: str
    kernel: str
    ram_total_bytes: int
    ram_free_bytes: int
    caps_total: int
    caps_free: int
    roms: _containers.RepeatedCompositeFieldContainer[Rom]
    board_time_us: int
    baud: int
    def __init__(self, name: _Optional[str] = ..., agent_address: _Optional[str] = ..., health: _Optional[_Union[BoardHealth, str]] = ..., health_detail: _Optional[str] = ..., protocol_version: _Optional[int] = ..., arch: _Optional[str] = ..., kernel: _Optional[str] = ..., ram_total_bytes: _Optional[int] = ..., ram_free_bytes: _Optional[int] = ..., caps_total: _Optional[int] = ..., caps_free: _Optional[int] = ..., roms: _Optional[_Iterable[_Union[Rom, _Mapping]]] = ..., board_time_us: _Optional[int] = ..., baud: _Optional[int] = ...) -> None: ...

class Component(_message.Message):
    __slots__ = ("name", "board", "rom", "state", "ram_quota_bytes", "ram_used_bytes", "cap_quota", "cap_used", "threads")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BOARD_FIELD_NUMBER: _ClassVar[int]
    ROM_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RAM_QUOTA_BYTES_FIELD_NUMBER: _ClassVar[int]
    RAM_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    CAP_QUOTA_FIELD_NUMBER: _ClassVar[int]
    CAP_USED_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    name: str
    board: str
    rom: str
    state: str
    ram_quota_bytes: int
    ram_used_bytes: int
    cap_quota: int
    cap_used: int
    threads: int
    def __init__(self, name: _Optional[str] = ..., board: _Optional[str] = ..., rom: _Optional[str] = ..., state: _Optional[str] = ..., ram_quota_bytes: _Optional[int] = ..., ram_used_bytes: _Optional[int] = ..., cap_quota: _Optional[int] = ..., cap_used: _Optional[int] = ..., threads: _Optional[int] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ("index", "time_us", "text", "board")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TIME_US_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    BOARD_FIELD_NUMBER: _ClassVar[int]
    index: int
    time_us: int
    text: str
    board: str
    def __init__(self, index: _Optional[int] = ..., time_us: _Optional[int] = ..., text: _Optional[str] = ..., board: _Optional[str] = ...) -> None: ...

class MoveOptions(_message.Message):
    __slots__ = ("mode", "max_downtime_ms", "on_overshoot", "link_grace_ms", "max_rounds")
    MODE_FIELD_NUMBER: _ClassVar[int]
    MAX_DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    ON_OVERSHOOT_FIELD_NUMBER: _ClassVar[int]
    LINK_GRACE_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_ROUNDS_FIELD_NUMBER: _ClassVar[int]
    mode: MoveMode
    max_downtime_ms: int
    on_overshoot: OvershootPolicy
    link_grace_ms: int
    max_rounds: int
    def __init__(self, mode: _Optional[_Union[MoveMode, str]] = ..., max_downtime_ms: _Optional[int] = ..., on_overshoot: _Optional[_Union[OvershootPolicy, str]] = ..., link_grace_ms: _Optional[int] = ..., max_rounds: _Optional[int] = ...) -> None: ...

class PhaseTransition(_message.Message):
    __slots__ = ("phase", "time")
    PHASE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    phase: MovePhase
    time: _timestamp_pb2.Timestamp
    def __init__(self, phase: _Optional[_Union[MovePhase, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MoveRound(_message.Message):
    __slots__ = ("index", "final", "pages", "page_bytes", "wire_bytes", "duration_ms", "dirty_rate_bytes_per_s", "checkpoint_id", "resumes")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    PAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    WIRE_BYTES_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    DIRTY_RATE_BYTES_PER_S_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    RESUMES_FIELD_NUMBER: _ClassVar[int]
    index: int
    final: bool
    pages: int
    page_bytes: int
    wire_bytes: int
    duration_ms: int
    dirty_rate_bytes_per_s: int
    checkpoint_id: str
    resumes: int
    def __init__(self, index: _Optional[int] = ..., final: _Optional[bool] = ..., pages: _Optional[int] = ..., page_bytes: _Optional[int] = ..., wire_bytes: _Optional[int] = ..., duration_ms: _Optional[int] = ..., dirty_rate_bytes_per_s: _Optional[int] = ..., checkpoint_id: _Optional[str] = ..., resumes: _Optional[int] = ...) -> None: ...

class MoveProgress(_message.Message):
    __slots__ = ("round", "bytes_sent", "bytes_remaining", "goodput_bytes_per_s", "dirty_rate_bytes_per_s", "expected_downtime_ms", "convergence", "convergence_reason", "percent")
    ROUND_FIELD_NUMBER: _ClassVar[int]
    BYTES_SENT_FIELD_NUMBER: _ClassVar[int]
    BYTES_REMAINING_FIELD_NUMBER: _ClassVar[int]
    GOODPUT_BYTES_PER_S_FIELD_NUMBER: _ClassVar[int]
    DIRTY_RATE_BYTES_PER_S_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    CONVERGENCE_FIELD_NUMBER: _ClassVar[int]
    CONVERGENCE_REASON_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    round: int
    bytes_sent: int
    bytes_remaining: int
    goodput_bytes_per_s: int
    dirty_rate_bytes_per_s: int
    expected_downtime_ms: int
    convergence: Convergence
    convergence_reason: str
    percent: float
    def __init__(self, round: _Optional[int] = ..., bytes_sent: _Optional[int] = ..., bytes_remaining: _Optional[int] = ..., goodput_bytes_per_s: _Optional[int] = ..., dirty_rate_bytes_per_s: _Optional[int] = ..., expected_downtime_ms: _Optional[int] = ..., convergence: _Optional[_Union[Convergence, str]] = ..., convergence_reason: _Optional[str] = ..., percent: _Optional[float] = ...) -> None: ...

class MoveError(_message.Message):
    __slots__ = ("reason", "message")
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    message: str
    def __init__(self, reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Move(_message.Message):
    __slots__ = ("id", "component", "source_board", "target_board", "options", "phase", "transitions", "progress", "rounds", "stop_rule", "predicted_downtime_ms", "downtime_ms", "total_ms", "error", "cancel_requested", "create_time", "update_time", "generation", "note")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_BOARD_FIELD_NUMBER: _ClassVar[int]
    TARGET_BOARD_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    STOP_RULE_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    id: str
    component: str
    source_board: str
    target_board: str
    options: MoveOptions
    phase: MovePhase
    transitions: _containers.RepeatedCompositeFieldContainer[PhaseTransition]
    progress: MoveProgress
    rounds: _containers.RepeatedCompositeFieldContainer[MoveRound]
    stop_rule: str
    predicted_downtime_ms: int
    downtime_ms: int
    total_ms: int
    error: MoveError
    cancel_requested: bool
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    generation: int
    note: str
    def __init__(self, id: _Optional[str] = ..., component: _Optional[str] = ..., source_board: _Optional[str] = ..., target_board: _Optional[str] = ..., options: _Optional[_Union[MoveOptions, _Mapping]] = ..., phase: _Optional[_Union[MovePhase, str]] = ..., transitions: _Optional[_Iterable[_Union[PhaseTransition, _Mapping]]] = ..., progress: _Optional[_Union[MoveProgress, _Mapping]] = ..., rounds: _Optional[_Iterable[_Union[MoveRound, _Mapping]]] = ..., stop_rule: _Optional[str] = ..., predicted_downtime_ms: _Optional[int] = ..., downtime_ms: _Optional[int] = ..., total_ms: _Optional[int] = ..., error: _Optional[_Union[MoveError, _Mapping]] = ..., cancel_requested: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., generation: _Optional[int] = ..., note: _Optional[str] = ...) -> None: ...

class PreflightCheck(_message.Message):
    __slots__ = ("name", "passed", "detail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    passed: bool
    detail: str
    def __init__(self, name: _Optional[str] = ..., passed: _Optional[bool] = ..., detail: _Optional[str] = ...) -> None: ...

class MovePlan(_message.Message):
    __slots__ = ("component", "source_board", "target_board", "checks", "feasible", "ram_bytes", "goodput_bytes_per_s", "dirty_rate_bytes_per_s", "predicted_total_ms", "predicted_downtime_ms", "stop_copy_downtime_ms", "prediction_basis")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_BOARD_FIELD_NUMBER: _ClassVar[int]
    TARGET_BOARD_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    FEASIBLE_FIELD_NUMBER: _ClassVar[int]
    RAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    GOODPUT_BYTES_PER_S_FIELD_NUMBER: _ClassVar[int]
    DIRTY_RATE_BYTES_PER_S_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    STOP_COPY_DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_BASIS_FIELD_NUMBER: _ClassVar[int]
    component: str
    source_board: str
    target_board: str
    checks: _containers.RepeatedCompositeFieldContainer[PreflightCheck]
    feasible: bool
    ram_bytes: int
    goodput_bytes_per_s: int
    dirty_rate_bytes_per_s: int
    predicted_total_ms: int
    predicted_downtime_ms: int
    stop_copy_downtime_ms: int
    prediction_basis: str
    def __init__(self, component: _Optional[str] = ..., source_board: _Optional[str] = ..., target_board: _Optional[str] = ..., checks: _Optional[_Iterable[_Union[PreflightCheck, _Mapping]]] = ..., feasible: _Optional[bool] = ..., ram_bytes: _Optional[int] = ..., goodput_bytes_per_s: _Optional[int] = ..., dirty_rate_bytes_per_s: _Optional[int] = ..., predicted_total_ms: _Optional[int] = ..., predicted_downtime_ms: _Optional[int] = ..., stop_copy_downtime_ms: _Optional[int] = ..., prediction_basis: _Optional[str] = ...) -> None: ...

class CheckpointSignature(_message.Message):
    __slots__ = ("signer", "algorithm", "signature")
    SIGNER_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    signer: str
    algorithm: str
    signature: bytes
    def __init__(self, signer: _Optional[str] = ..., algorithm: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class StoredCheckpoint(_message.Message):
    __slots__ = ("id", "component", "board", "parent_id", "sequence", "create_time", "pages", "page_bytes", "stored_bytes", "root_digest", "rom", "frozen", "signatures")
    ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    BOARD_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    PAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    STORED_BYTES_FIELD_NUMBER: _ClassVar[int]
    ROOT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ROM_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    id: str
    component: str
    board: str
    parent_id: str
    sequence: int
    create_time: _timestamp_pb2.Timestamp
    pages: int
    page_bytes: int
    stored_bytes: int
    root_digest: bytes
    rom: str
    frozen: bool
    signatures: _containers.RepeatedCompositeFieldContainer[CheckpointSignature]
    def __init__(self, id: _Optional[str] = ..., component: _Optional[str] = ..., board: _Optional[str] = ..., parent_id: _Optional[str] = ..., sequence: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pages: _Optional[int] = ..., page_bytes: _Optional[int] = ..., stored_bytes: _Optional[int] = ..., root_digest: _Optional[bytes] = ..., rom: _Optional[str] = ..., frozen: _Optional[bool] = ..., signatures: _Optional[_Iterable[_Union[CheckpointSignature, _Mapping]]] = ...) -> None: ...
