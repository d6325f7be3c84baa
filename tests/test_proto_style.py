"""The .proto files follow the protobuf style guide as buf's STANDARD lint rules
check it (no buf binary here: the rules are checked on the compiled descriptors)."""

from __future__ import annotations

import re

import pytest
from genode_cr.v1 import board_pb2, checkpoint_pb2
from migrate.v1 import agent_pb2, coordinator_pb2, resources_pb2

FILES = [resources_pb2, agent_pb2, coordinator_pb2]
ALL_FILES = FILES + [board_pb2, checkpoint_pb2]

UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")
LOWER_SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
PASCAL = re.compile(r"^[A-Z][a-zA-Z0-9]*$")


def _messages(container):
    for message in container.message_types_by_name.values() if hasattr(
            container, "message_types_by_name") else container.nested_types:
        yield message
        yield from _messages(message)


@pytest.mark.parametrize("module", ALL_FILES, ids=lambda m: m.DESCRIPTOR.name)
def test_names(module):
    file = module.DESCRIPTOR
    # PACKAGE_VERSION_SUFFIX, PACKAGE_DIRECTORY_MATCH
    assert re.fullmatch(r"[a-z_]+(\.[a-z_]+)*\.v\d+", file.package)
    assert file.name.rsplit("/", 1)[0] == file.package.replace(".", "/")
    for message in _messages(file):
        assert PASCAL.match(message.name), message.full_name                 # MESSAGE_PASCAL_CASE
        for field in message.fields:
            assert LOWER_SNAKE.match(field.name), field.full_name            # FIELD_LOWER_SNAKE_CASE
    for enum in file.enum_types_by_name.values():
        prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"
        assert enum.values[0].number == 0
        for value in enum.values:
            assert UPPER_SNAKE.match(value.name), value.name                 # ENUM_VALUE_UPPER_SNAKE_CASE
        if file.package.startswith("migrate."):
            # The board's protos predate the rule for two enums (DATASPACE_RAM, BLOCKING_NONE).
            assert all(v.name.startswith(prefix) for v in enum.values), enum.name  # ENUM_VALUE_PREFIX
            assert enum.values[0].name == prefix + "UNSPECIFIED"             # ENUM_ZERO_VALUE_SUFFIX


@pytest.mark.parametrize("module", FILES, ids=lambda m: m.DESCRIPTOR.name)
def test_services(module):
    file = module.DESCRIPTOR
    seen: set[str] = set()
    for service in file.services_by_name.values():
        assert service.name.endswith("Service")                              # SERVICE_SUFFIX
        for method in service.methods:
            assert PASCAL.match(method.name)                                 # RPC_PASCAL_CASE
            request, response = method.input_type.name, method.output_type.name
            # RPC_REQUEST_STANDARD_NAME / RPC_RESPONSE_STANDARD_NAME
            assert request in (f"{method.name}Request", f"{service.name}{method.name}Request")
            assert response in (f"{method.name}Response",
                                f"{service.name}{method.name}Response")
            # RPC_REQUEST_RESPONSE_UNIQUE
            assert request not in seen and response not in seen
            seen |= {request, response}
