from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Blocking(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BLOCKING_NONE: _ClassVar[Blocking]
    BLOCKING_IRQ_RECEIVE: _ClassVar[Blocking]
    BLOCKING_REPLY_WAIT: _ClassVar[Blocking]
    BLOCKING_CALL: _ClassVar[Blocking]
    BLOCKING_EXITED: _ClassVar[Blocking]

class DataspaceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATASPACE_RAM: _ClassVar[DataspaceKind]
    DATASPACE_ROM: _ClassVar[DataspaceKind]

class Compression(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPRESSION_NONE: _ClassVar[Compression]
    COMPRESSION_ZSTD: _ClassVar[Compression]
BLOCKING_NONE: Blocking
BLOCKING_IRQ_RECEIVE: Blocking
BLOCKING_REPLY_WAIT: Blocking
BLOCKING_CALL: Blocking
BLOCKING_EXITED: Blocking
DATASPACE_RAM: DataspaceKind
DATASPACE_ROM: DataspaceKind
COMPRESSION_NONE: Compression
COMPRESSION_ZSTD: Compression

class ObjectRef(_message.Message):
    __slots__ = ("badge", "kcap")
    BADGE_FIELD_NUMBER: _ClassVar[int]
    KCAP_FIELD_NUMBER: _ClassVar[int]
    badge: int
    kcap: int
    def __init__(self, badge: _Optional[int] = ..., kcap: _Optional[int] = ...) -> None: ...

class CapSlot(_message.Message):
    __slots__ = ("kcap", "badge")
    KCAP_FIELD_NUMBER: _ClassVar[int]
    BADGE_FIELD_NUMBER: _ClassVar[int]
    kcap: int
    badge: int
    def __init__(self, kcap: _Optional[int] = ..., badge: _Optional[int] = ...) -> None: ...

class SessionInfo(_message.Message):
    __slots__ = ("ref", "id", "service", "args")
    REF_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    ref: ObjectRef
    id: int
    service: str
    args: str
    def __init__(self, ref: _Optional[_Union[ObjectRef, _Mapping]] = ..., id: _Optional[int] = ..., service: _Optional[str] = ..., args: _Optional[str] = ...) -> None: ...

class CpuState(_message.Message):
    __slots__ = ("r", "sp", "lr", "ip", "cpsr", "cpu_exception")
    R_FIELD_NUMBER: _ClassVar[int]
    SP_FIELD_NUMBER: _ClassVar[int]
    LR_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    CPSR_FIELD_NUMBER: _ClassVar[int]
    CPU_EXCEPTION_FIELD_NUMBER: _ClassVar[int]
    r: _containers.RepeatedScalarFieldContainer[int]
    sp: int
    lr: int
    ip: int
    cpsr: int
    cpu_exception: int
    def __init__(self, r: _Optional[_Iterable[int]] = ..., sp: _Optional[int] = ..., lr: _Optional[int] = ..., ip: _Optional[int] = ..., cpsr: _Optional[int] = ..., cpu_exception: _Optional[int] = ...) -> None: ...

class Thread(_message.Message):
    __slots__ = ("ref", "name", "main", "started", "paused", "state", "blocking")
    REF_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAIN_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    BLOCKING_FIELD_NUMBER: _ClassVar[int]
    ref: ObjectRef
    name: str
    main: bool
    started: bool
    paused: bool
    state: CpuState
    blocking: Blocking
    def __init__(self, ref: _Optional[_Union[ObjectRef, _Mapping]] = ..., name: _Optional[str] = ..., main: _Optional[bool] = ..., started: _Optional[bool] = ..., paused: _Optional[bool] = ..., state: _Optional[_Union[CpuState, _Mapping]] = ..., blocking: _Optional[_Union[Blocking, str]] = ...) -> None: ...

class Attachment(_message.Message):
    __slots__ = ("ds_badge", "addr", "size", "offset", "writable", "executable")
    DS_BADGE_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    WRITABLE_FIELD_NUMBER: _ClassVar[int]
    EXECUTABLE_FIELD_NUMBER: _ClassVar[int]
    ds_badge: int
    addr: int
    size: int
    offset: int
    writable: bool
    executable: bool
    def __init__(self, ds_badge: _Optional[int] = ..., addr: _Optional[int] = ..., size: _Optional[int] = ..., offset: _Optional[int] = ..., writable: _Optional[bool] = ..., executable: _Optional[bool] = ...) -> None: ...

class RegionMap(_message.Message):
    __slots__ = ("ref", "dataspace", "base", "size", "attachments")
    REF_FIELD_NUMBER: _ClassVar[int]
    DATASPACE_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    ref: ObjectRef
    dataspace: ObjectRef
    base: int
    size: int
    attachments: _containers.RepeatedCompositeFieldContainer[Attachment]
    def __init__(self, ref: _Optional[_Union[ObjectRef, _Mapping]] = ..., dataspace: _Optional[_Union[ObjectRef, _Mapping]] = ..., base: _Optional[int] = ..., size: _Optional[int] = ..., attachments: _Optional[_Iterable[_Union[Attachment, _Mapping]]] = ...) -> None: ...

class PageUpdate(_message.Message):
    __slots__ = ("index", "digest")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    index: int
    digest: bytes
    def __init__(self, index: _Optional[int] = ..., digest: _Optional[bytes] = ...) -> None: ...

class Dataspace(_message.Message):
    __slots__ = ("ref", "kind", "size", "pages", "changed", "pages_from_parent")
    REF_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    PAGES_FROM_PARENT_FIELD_NUMBER: _ClassVar[int]
    ref: ObjectRef
    kind: DataspaceKind
    size: int
    pages: _containers.RepeatedScalarFieldContainer[bytes]
    changed: _containers.RepeatedCompositeFieldContainer[PageUpdate]
    pages_from_parent: bool
    def __init__(self, ref: _Optional[_Union[ObjectRef, _Mapping]] = ..., kind: _Optional[_Union[DataspaceKind, str]] = ..., size: _Optional[int] = ..., pages: _Optional[_Iterable[bytes]] = ..., changed: _Optional[_Iterable[_Union[PageUpdate, _Mapping]]] = ..., pages_from_parent: _Optional[bool] = ...) -> None: ...

class SignalSource(_message.Message):
    __slots__ = ("ref", "semaphore", "attached_thread_badge", "irq_pending")
    REF_FIELD_NUMBER: _ClassVar[int]
    SEMAPHORE_FIELD_NUMBER: _ClassVar[int]
    ATTACHED_THREAD_BADGE_FIELD_NUMBER: _ClassVar[int]
    IRQ_PENDING_FIELD_NUMBER: _ClassVar[int]
    ref: ObjectRef
    semaphore: ObjectRef
    attached_thread_badge: int
    irq_pending: bool
    def __init__(self, ref: _Optional[_Union[ObjectRef, _Mapping]] = ..., semaphore: _Optional[_Union[ObjectRef, _Mapping]] = ..., attached_thread_badge: _Optional[int] = ..., irq_pending: _Optional[bool] = ...) -> None: ...

class SignalContext(_message.Message):
    __slots__ = ("ref", "source_badge", "imprint", "pending")
    REF_FIELD_NUMBER: _ClassVar[int]
    SOURCE_BADGE_FIELD_NUMBER: _ClassVar[int]
    IMPRINT_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    ref: ObjectRef
    source_badge: int
    imprint: int
    pending: int
    def __init__(self, ref: _Optional[_Union[ObjectRef, _Mapping]] = ..., source_badge: _Optional[int] = ..., imprint: _Optional[int] = ..., pending: _Optional[int] = ...) -> None: ...

class NativeCap(_message.Message):
    __slots__ = ("ref", "ep_thread_badge")
    REF_FIELD_NUMBER: _ClassVar[int]
    EP_THREAD_BADGE_FIELD_NUMBER: _ClassVar[int]
    ref: ObjectRef
    ep_thread_badge: int
    def __init__(self, ref: _Optional[_Union[ObjectRef, _Mapping]] = ..., ep_thread_badge: _Optional[int] = ...) -> None: ...

class PdSession(_message.Message):
    __slots__ = ("session", "address_space", "stack_area", "linker_area", "signal_sources", "signal_contexts", "native_caps", "ram_quota", "ram_used", "cap_quota", "cap_used")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_SPACE_FIELD_NUMBER: _ClassVar[int]
    STACK_AREA_FIELD_NUMBER: _ClassVar[int]
    LINKER_AREA_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_SOURCES_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_CONTEXTS_FIELD_NUMBER: _ClassVar[int]
    NATIVE_CAPS_FIELD_NUMBER: _ClassVar[int]
    RAM_QUOTA_FIELD_NUMBER: _ClassVar[int]
    RAM_USED_FIELD_NUMBER: _ClassVar[int]
    CAP_QUOTA_FIELD_NUMBER: _ClassVar[int]
    CAP_USED_FIELD_NUMBER: _ClassVar[int]
    session: SessionInfo
    address_space: RegionMap
    stack_area: RegionMap
    linker_area: RegionMap
    signal_sources: _containers.RepeatedCompositeFieldContainer[SignalSource]
    signal_contexts: _containers.RepeatedCompositeFieldContainer[SignalContext]
    native_caps: _containers.RepeatedCompositeFieldContainer[NativeCap]
    ram_quota: int
    ram_used: int
    cap_quota: int
    cap_used: int
    def __init__(self, session: _Optional[_Union[SessionInfo, _Mapping]] = ..., address_space: _Optional[_Union[RegionMap, _Mapping]] = ..., stack_area: _Optional[_Union[RegionMap, _Mapping]] = ..., linker_area: _Optional[_Union[RegionMap, _Mapping]] = ..., signal_sources: _Optional[_Iterable[_Union[SignalSource, _Mapping]]] = ..., signal_contexts: _Optional[_Iterable[_Union[SignalContext, _Mapping]]] = ..., native_caps: _Optional[_Iterable[_Union[NativeCap, _Mapping]]] = ..., ram_quota: _Optional[int] = ..., ram_used: _Optional[int] = ..., cap_quota: _Optional[int] = ..., cap_used: _Optional[int] = ...) -> None: ...

class CpuSession(_message.Message):
    __slots__ = ("session", "threads")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    session: SessionInfo
    threads: _containers.RepeatedCompositeFieldContainer[Thread]
    def __init__(self, session: _Optional[_Union[SessionInfo, _Mapping]] = ..., threads: _Optional[_Iterable[_Union[Thread, _Mapping]]] = ...) -> None: ...

class LogSession(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: SessionInfo
    def __init__(self, session: _Optional[_Union[SessionInfo, _Mapping]] = ...) -> None: ...

class TimerSession(_message.Message):
    __slots__ = ("session", "sigh_badge", "armed", "periodic", "period_us", "remaining_us", "elapsed_us")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SIGH_BADGE_FIELD_NUMBER: _ClassVar[int]
    ARMED_FIELD_NUMBER: _ClassVar[int]
    PERIODIC_FIELD_NUMBER: _ClassVar[int]
    PERIOD_US_FIELD_NUMBER: _ClassVar[int]
    REMAINING_US_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_US_FIELD_NUMBER: _ClassVar[int]
    session: SessionInfo
    sigh_badge: int
    armed: bool
    periodic: bool
    period_us: int
    remaining_us: int
    elapsed_us: int
    def __init__(self, session: _Optional[_Union[SessionInfo, _Mapping]] = ..., sigh_badge: _Optional[int] = ..., armed: _Optional[bool] = ..., periodic: _Optional[bool] = ..., period_us: _Optional[int] = ..., remaining_us: _Optional[int] = ..., elapsed_us: _Optional[int] = ...) -> None: ...

class RmSession(_message.Message):
    __slots__ = ("session", "region_maps")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    REGION_MAPS_FIELD_NUMBER: _ClassVar[int]
    session: SessionInfo
    region_maps: _containers.RepeatedCompositeFieldContainer[RegionMap]
    def __init__(self, session: _Optional[_Union[SessionInfo, _Mapping]] = ..., region_maps: _Optional[_Iterable[_Union[RegionMap, _Mapping]]] = ...) -> None: ...

class RomSession(_message.Message):
    __slots__ = ("session", "module", "dataspace", "digest")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    DATASPACE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    session: SessionInfo
    module: str
    dataspace: ObjectRef
    digest: bytes
    def __init__(self, session: _Optional[_Union[SessionInfo, _Mapping]] = ..., module: _Optional[str] = ..., dataspace: _Optional[_Union[ObjectRef, _Mapping]] = ..., digest: _Optional[bytes] = ...) -> None: ...

class RomModule(_message.Message):
    __slots__ = ("name", "digest", "size")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    name: str
    digest: bytes
    size: int
    def __init__(self, name: _Optional[str] = ..., digest: _Optional[bytes] = ..., size: _Optional[int] = ...) -> None: ...

class Manifest(_message.Message):
    __slots__ = ("format_version", "board", "arch", "kernel", "component", "id", "parent_id", "sequence", "taken_at_us", "frozen", "rom", "page_size", "tracking_unit_pages", "cap_map_addr", "cap_map_entries", "parent_cap_addr", "parent", "pd", "cpu", "log_sessions", "timer_sessions", "rm_sessions", "rom_sessions", "dataspaces", "config", "cap_space")
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    BOARD_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    KERNEL_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TAKEN_AT_US_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FIELD_NUMBER: _ClassVar[int]
    ROM_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    TRACKING_UNIT_PAGES_FIELD_NUMBER: _ClassVar[int]
    CAP_MAP_ADDR_FIELD_NUMBER: _ClassVar[int]
    CAP_MAP_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    PARENT_CAP_ADDR_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PD_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    LOG_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    TIMER_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    RM_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    ROM_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    DATASPACES_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CAP_SPACE_FIELD_NUMBER: _ClassVar[int]
    format_version: int
    board: str
    arch: str
    kernel: str
    component: str
    id: str
    parent_id: str
    sequence: int
    taken_at_us: int
    frozen: bool
    rom: RomModule
    page_size: int
    tracking_unit_pages: int
    cap_map_addr: int
    cap_map_entries: int
    parent_cap_addr: int
    parent: ObjectRef
    pd: PdSession
    cpu: CpuSession
    log_sessions: _containers.RepeatedCompositeFieldContainer[LogSession]
    timer_sessions: _containers.RepeatedCompositeFieldContainer[TimerSession]
    rm_sessions: _containers.RepeatedCompositeFieldContainer[RmSession]
    rom_sessions: _containers.RepeatedCompositeFieldContainer[RomSession]
    dataspaces: _containers.RepeatedCompositeFieldContainer[Dataspace]
    config: bytes
    cap_space: _containers.RepeatedCompositeFieldContainer[CapSlot]
    def __init__(self, format_version: _Optional[int] = ..., board: _Optional[str] = ..., arch: _Optional[str] = ..., kernel: _Optional[str] = ..., component: _Optional[str] = ..., id: _Optional[str] = ..., parent_id: _Optional[str] = ..., sequence: _Optional[int] = ..., taken_at_us: _Optional[int] = ..., frozen: _Optional[bool] = ..., rom: _Optional[_Union[RomModule, _Mapping]] = ..., page_size: _Optional[int] = ..., tracking_unit_pages: _Optional[int] = ..., cap_map_addr: _Optional[int] = ..., cap_map_entries: _Optional[int] = ..., parent_cap_addr: _Optional[int] = ..., parent: _Optional[_Union[ObjectRef, _Mapping]] = ..., pd: _Optional[_Union[PdSession, _Mapping]] = ..., cpu: _Optional[_Union[CpuSession, _Mapping]] = ..., log_sessions: _Optional[_Iterable[_Union[LogSession, _Mapping]]] = ..., timer_sessions: _Optional[_Iterable[_Union[TimerSession, _Mapping]]] = ..., rm_sessions: _Optional[_Iterable[_Union[RmSession, _Mapping]]] = ..., rom_sessions: _Optional[_Iterable[_Union[RomSession, _Mapping]]] = ..., dataspaces: _Optional[_Iterable[_Union[Dataspace, _Mapping]]] = ..., config: _Optional[bytes] = ..., cap_space: _Optional[_Iterable[_Union[CapSlot, _Mapping]]] = ...) -> None: ...

class Page(_message.Message):
    __slots__ = ("digest", "compression", "data")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    digest: bytes
    compression: Compression
    data: bytes
    def __init__(self, digest: _Optional[bytes] = ..., compression: _Optional[_Union[Compression, str]] = ..., data: _Optional[bytes] = ...) -> None: ...
