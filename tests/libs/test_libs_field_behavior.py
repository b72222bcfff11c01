"""Sweep: every field a client sends says how the server treats it (google.api.field_behavior,
AIP-203), so the contract, not the code, tells a caller what it must fill in.

Every field of every rpc's request message, and of every message nested in one, carries a
field behavior; paging fields are OPTIONAL, request_id and brand_id REQUIRED, and a field the
server sets (OUTPUT_ONLY) never stands directly in a request.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from libs.contract import services

Behavior = field_behavior_pb2.FieldBehavior
# (message full name, field name) -> why it carries no field_behavior. Keep it short.
ALLOWED_WITHOUT: dict[tuple[str, str], str] = {}


def request_messages() -> list[Descriptor]:
    return sorted({method.input_type for service in services().values()
                   for method in service.methods}, key=lambda m: m.full_name)


def input_messages() -> list[Descriptor]:
    """Request messages and every message reachable from their fields (map entries aside:
    their key/value fields cannot carry options)."""
    seen: dict[str, Descriptor] = {}
    stack = request_messages()
    while stack:
        message = stack.pop()
        if message.full_name in seen or message.GetOptions().map_entry:
            continue
        seen[message.full_name] = message
        stack += [f.message_type for f in message.fields if f.message_type is not None
                  and f.message_type.full_name.startswith("brandclub.")]
    return sorted(seen.values(), key=lambda m: m.full_name)


def behaviors(field: FieldDescriptor) -> set[int]:
    return set(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])


def input_fields() -> Iterator[FieldDescriptor]:
    for message in input_messages():
        yield from message.fields


def test_the_sweep_sees_every_service() -> None:
    """Guard against a sweep over nothing: all services' requests are walked."""
    packages = {m.full_name.split(".")[1] for m in request_messages()}
    assert packages >= {"identity", "membership", "benefits", "engagement", "messaging"}
    assert len(list(input_fields())) > 500


@pytest.mark.parametrize("message", input_messages(), ids=lambda m: m.full_name)
def test_every_input_field_has_a_field_behavior(message: Descriptor) -> None:
    """A new request field without [(google.api.field_behavior) = ...] fails here."""
    missing = [field.name for field in message.fields if not behaviors(field)
               and (message.full_name, field.name) not in ALLOWED_WITHOUT]
    assert not missing, (f"{message.full_name}: add (google.api.field_behavior) = REQUIRED / "
                         f"OPTIONAL / OUTPUT_ONLY / IDENTIFIER to {', '.join(missing)}")


@pytest.mark.parametrize("message", request_messages(), ids=lambda m: m.full_name)
def test_request_fields_follow_the_house_rules(message: Descriptor) -> None:
    """Paging is optional; request_id and brand_id are required; nothing in a request is
    output-only; REQUIRED and OPTIONAL never both."""
    for field in message.fields:
        found = behaviors(field)
        where = f"{message.full_name}.{field.name}"
        if field.name in ("page_size", "page_token"):
            assert found == {Behavior.OPTIONAL}, where
        if field.name in ("request_id", "brand_id"):
            assert Behavior.REQUIRED in found, where
        assert Behavior.OUTPUT_ONLY not in found, where
        assert not {Behavior.REQUIRED, Behavior.OPTIONAL} <= found, where


def test_the_allow_list_names_real_fields_without_a_behavior() -> None:
    """An allow-list entry that is annotated by now, or names no field, is stale."""
    fields = {(message.full_name, field.name): field for message in input_messages()
              for field in message.fields}
    for key in ALLOWED_WITHOUT:
        assert key in fields and not behaviors(fields[key]), key
