"""Every bound on what a peer may send, named once.

A peer that holds a valid certificate can still send anything: a name of a
megabyte, a page size of four billion, a stage stream that never ends. Each
bound below is what the service needs at most, and ``migrate.rpc.map_errors``
applies them at the gRPC edge to every request of both services (after the
caller is authorized, before a servicer runs), so no method can forget one.
A violation is a ``RequestError`` (INVALID_ARGUMENT) whose message names the
bound (``MAX_NAME_LENGTH`` ...). docs/api.md ("Limits") lists them.

Requests are checked by field name, through every ``migrate.v1`` message they
contain. genode_cr's own messages inside them (manifests, page chunks) are
left to the agent's chunk checks and to the board, which validates every
checkpoint it stages.
"""

from __future__ import annotations

from typing import AsyncIterable, AsyncIterator

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from .errors import RequestError

__all__ = [
    "MAX_MESSAGE_BYTES",
    "MAX_NAME_LENGTH",
    "MAX_ID_LENGTH",
    "MAX_STRING_LENGTH",
    "MAX_CONFIG_BYTES",
    "MAX_PAGE_SIZE",
    "MAX_LIST_LENGTH",
    "MAX_LOG_TAIL",
    "MAX_RAM_QUOTA",
    "MAX_CAP_QUOTA",
    "MAX_CHUNK_PAGES",
    "MAX_CHUNK_BYTES",
    "MAX_STREAM_MESSAGES",
    "MAX_STREAM_BYTES",
    "MAX_DOWNTIME_MS",
    "MAX_LINK_GRACE_MS",
    "MAX_ROUNDS",
    "MAX_AUDIT_ARGUMENT_LENGTH",
    "check_request",
    "check_name",
    "bounded_stream",
]

#: gRPC refuses larger messages on both servers and every channel (RESOURCE_EXHAUSTED).
#: Every message we send is a chunk of pages or smaller (64 compressed pages stay
#: below 1 MiB).
MAX_MESSAGE_BYTES = 4 << 20
#: Component, board and ROM names (a name is also a board's link-protocol key).
MAX_NAME_LENGTH = 64
#: Move and checkpoint ids, page tokens, identities in filters.
MAX_ID_LENGTH = 128
#: Any other string field of a request.
MAX_STRING_LENGTH = 1024
#: A component's config ROM, in UTF-8 bytes.
MAX_CONFIG_BYTES = 64 << 10
#: Items per page of a List call.
MAX_PAGE_SIZE = 500
#: Items of any repeated field of a request.
MAX_LIST_LENGTH = 1000
#: Log lines of a StreamLogs tail.
MAX_LOG_TAIL = 100_000
MAX_RAM_QUOTA = 1 << 40
MAX_CAP_QUOTA = 1 << 20
#: Page chunks travel as one link message each (the link takes at most 1 MiB).
MAX_CHUNK_PAGES = 64
MAX_CHUNK_BYTES = 512 << 10
#: Messages of one client stream (StageCheckpoint: a start, page chunks, an end):
#: 65536 chunks of 64 pages are 16 GiB of pages, more than any board has.
MAX_STREAM_MESSAGES = 65_538
#: Bytes of one client stream, as serialized.
MAX_STREAM_BYTES = 16 << 30
#: Durations in MoveOptions.
MAX_DOWNTIME_MS = 3_600_000
MAX_LINK_GRACE_MS = 3_600_000
MAX_ROUNDS = 64
#: How much of one request field the audit log keeps (longer: its length only).
MAX_AUDIT_ARGUMENT_LENGTH = 128

_NAMES = frozenset({"name", "component", "board", "source_board", "target_board", "rom"})
_IDS = frozenset({"id", "since_id", "resume_id", "page_token", "identity", "method"})
#: Integer fields by name: (bound, its name).
_INTEGERS: dict[str, tuple[int, str]] = {
    "page_size": (MAX_PAGE_SIZE, "MAX_PAGE_SIZE"),
    "tail": (MAX_LOG_TAIL, "MAX_LOG_TAIL"),
    "ram_quota_bytes": (MAX_RAM_QUOTA, "MAX_RAM_QUOTA"),
    "cap_quota": (MAX_CAP_QUOTA, "MAX_CAP_QUOTA"),
    "resume_from_part": (MAX_STREAM_MESSAGES, "MAX_STREAM_MESSAGES"),
    "max_downtime_ms": (MAX_DOWNTIME_MS, "MAX_DOWNTIME_MS"),
    "link_grace_ms": (MAX_LINK_GRACE_MS, "MAX_LINK_GRACE_MS"),
    "max_rounds": (MAX_ROUNDS, "MAX_ROUNDS"),
}
#: Only our own messages are checked by field name (see the module's docstring).
_CHECKED_PACKAGE = "migrate.v1"


def check_name(value: str, what: str, *, bound: int = MAX_NAME_LENGTH,
               bound_name: str = "MAX_NAME_LENGTH") -> str:
    """``value`` if it is at most ``bound`` printable characters (or empty)."""
    if len(value) > bound:
        raise RequestError(f"{what} is {len(value)} characters long, above {bound_name} "
                           f"({bound})")
    if not value.isprintable():
        raise RequestError(f"{what} {value[:bound]!r} has characters that are not printable")
    return value


def _check_string(field: str, path: str, value: str) -> None:
    if field in _NAMES:
        check_name(value, path)
    elif field in _IDS:
        check_name(value, path, bound=MAX_ID_LENGTH, bound_name="MAX_ID_LENGTH")
    elif field == "config":
        size = len(value.encode())
        if size > MAX_CONFIG_BYTES:
            raise RequestError(f"{path} is {size} bytes, above MAX_CONFIG_BYTES "
                               f"({MAX_CONFIG_BYTES})")
    elif len(value) > MAX_STRING_LENGTH:
        raise RequestError(f"{path} is {len(value)} characters long, above MAX_STRING_LENGTH "
                           f"({MAX_STRING_LENGTH})")


def _check_value(field: FieldDescriptor, path: str, value: object) -> None:
    if field.type == FieldDescriptor.TYPE_STRING:
        _check_string(field.name, path, value)            # type: ignore[arg-type]
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        _check(value, f"{path}.")                         # type: ignore[arg-type]
    elif field.name in _INTEGERS:
        bound, name = _INTEGERS[field.name]
        if value > bound:                                 # type: ignore[operator]
            raise RequestError(f"{path} is {value}, above {name} ({bound})")


def _check(message: Message, prefix: str) -> None:
    if message.DESCRIPTOR.file.package != _CHECKED_PACKAGE:
        return
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.is_repeated:
            if len(value) > MAX_LIST_LENGTH:
                raise RequestError(f"{path} has {len(value)} items, above MAX_LIST_LENGTH "
                                   f"({MAX_LIST_LENGTH})")
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                continue                                  # no request has a map
            for item in value:
                _check_value(field, path, item)
        else:
            _check_value(field, path, value)


def check_request(message: Message) -> None:
    """RequestError naming the bound if a field of ``message`` exceeds one."""
    _check(message, "")


async def bounded_stream(requests: AsyncIterable[Message], method: str
                         ) -> AsyncIterator[Message]:
    """A client stream's messages, each checked (``check_request``), and the stream held
    to MAX_STREAM_MESSAGES messages and MAX_STREAM_BYTES bytes."""
    count = size = 0
    async for message in requests:
        count += 1
        size += message.ByteSize()
        if count > MAX_STREAM_MESSAGES:
            raise RequestError(f"a {method} stream of more than MAX_STREAM_MESSAGES "
                               f"({MAX_STREAM_MESSAGES}) messages")
        if size > MAX_STREAM_BYTES:
            raise RequestError(f"a {method} stream of more than MAX_STREAM_BYTES "
                               f"({MAX_STREAM_BYTES}) bytes")
        check_request(message)
        yield message
