"""JSON bodies onto protobuf requests and replies back to JSON.

`check_message` walks a JSON body against the contract's request message before it is parsed,
so a bad body is a 400 whose `field` names the place (`rule.group.rules[1].condition.number`),
never a 5xx; `body_onto` checks and fills, `body_into` only fills (protobuf's own parse errors).
"""

from __future__ import annotations

import re
from typing import Any, cast

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from libs.errors import InvalidArgument
from services.gateway.api.http_common import json_body


def proto_json(message: Message) -> dict[str, Any]:
    """A contract message in the proto3 JSON mapping (field names as in the contract)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def body_into(body: dict[str, Any], message: Message, *, forbidden: tuple[str, ...]) -> None:
    """Fill a request message from a JSON body; the caller's identity fields may not be sent."""
    for name in forbidden:
        if name in body:
            raise InvalidArgument(f"{name} comes from the token and may not be sent",
                                  field=name, reason="FIELD_NOT_ALLOWED")
    try:
        json_format.ParseDict(body, message)
    except json_format.ParseError as error:
        raise InvalidArgument(f"body does not match the request: {error}", field="body",
                              reason="BODY_INVALID") from None


_INTEGERS = (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32,
             FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT32,
             FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_FIXED32,
             FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED32,
             FieldDescriptor.TYPE_SFIXED64)
_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
_INT64_RANGE = (-(2 ** 63), 2 ** 63 - 1)
_MAX_DEPTH = 32
_DECIMAL = re.compile(r"-?[0-9]{1,20}")


def _bad(path: str, message: str, reason: str = "FIELD_TYPE_INVALID") -> InvalidArgument:
    return InvalidArgument(f"{path}: {message}", field=path, reason=reason)


def _check_scalar(value: Any, field: FieldDescriptor, path: str) -> None:
    kind = field.type
    if kind == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            raise _bad(path, "must be true or false")
    elif kind in _INTEGERS:
        number: Any = value
        if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
            number = int(value)
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        if isinstance(number, bool) or not isinstance(number, int):
            raise _bad(path, "must be an integer")
        if not _INT64_RANGE[0] <= number <= _INT64_RANGE[1] or (
                kind in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32,
                         FieldDescriptor.TYPE_SFIXED32) and not -(2 ** 31) <= number < 2 ** 31):
            raise _bad(path, "is out of range", "FIELD_OUT_OF_RANGE")
    elif kind in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(path, "must be a number")
    elif kind == FieldDescriptor.TYPE_ENUM:
        enum = field.enum_type
        assert enum is not None
        names = [v.name for v in enum.values if v.number != 0]
        if not isinstance(value, str) or value not in enum.values_by_name \
                or enum.values_by_name[value].number == 0:
            raise _bad(path, f"must be one of {', '.join(names)}", "FIELD_ENUM_INVALID")
    elif kind == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            raise _bad(path, "must be a string")
    elif kind == FieldDescriptor.TYPE_BYTES and not isinstance(value, str):
        raise _bad(path, "must be a base64 string")


def _check_value(value: Any, field: FieldDescriptor, path: str, depth: int) -> None:
    message_type = field.message_type
    if field.type != FieldDescriptor.TYPE_MESSAGE or message_type is None:
        _check_scalar(value, field, path)
    elif message_type.full_name == "google.protobuf.Timestamp":
        if not isinstance(value, str):
            raise _bad(path, "must be an RFC 3339 date-time string")
        try:
            Timestamp().FromJsonString(value)
        except ValueError:
            raise _bad(path, "must be an RFC 3339 date-time, e.g. 2026-01-31T09:00:00Z") \
                from None
    else:
        check_message(value, message_type, path, depth + 1)


def check_message(value: Any, descriptor: Descriptor, path: str, depth: int = 0) -> None:
    """Refuse, with the place named, a JSON value that does not fit the message: unknown
    fields, wrong types, unknown enum values, two members of one oneof."""
    if depth > _MAX_DEPTH:
        raise _bad(path, "is nested too deeply", "FIELD_TOO_DEEP")
    if not isinstance(value, dict):
        raise _bad(path, "must be a JSON object")
    oneofs: dict[str, str] = {}
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        field = descriptor.fields_by_name.get(key) or next(
            (f for f in descriptor.fields if f.json_name == key), None)
        if field is None:
            raise _bad(where, "is not a field of this request", "FIELD_UNKNOWN")
        if item is None:
            continue
        oneof = field.containing_oneof
        if oneof is not None:
            if oneof.name in oneofs:
                raise _bad(where, f"only one of {oneofs[oneof.name]} and {key} may be set",
                           "FIELD_ONEOF_CONFLICT")
            oneofs[oneof.name] = key
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            if not isinstance(item, dict):
                raise _bad(where, "must be a JSON object")
            value_field = field.message_type.fields_by_name["value"]
            for map_key, map_value in item.items():
                _check_value(map_value, value_field, f"{where}.{map_key}", depth)
        elif field.is_repeated:
            if not isinstance(item, list):
                raise _bad(where, "must be an array")
            for index, element in enumerate(item):
                _check_value(element, field, f"{where}[{index}]", depth)
        else:
            _check_value(item, field, where, depth)


def require_fields(message: Message, paths: tuple[str, ...], payload: dict[str, Any]) -> None:
    """Each required field is set (a boolean: present in the body, false being a value)."""
    for dotted in paths:
        target: Any = message
        *parents, name = dotted.split(".")
        for parent in parents:
            target = getattr(target, parent)
        descriptor = target.DESCRIPTOR.fields_by_name[name]
        if descriptor.is_repeated:
            present = len(getattr(target, name)) > 0
        elif descriptor.type == FieldDescriptor.TYPE_BOOL:
            present = _in_body(payload, dotted)
        elif descriptor.type == FieldDescriptor.TYPE_MESSAGE:
            present = target.HasField(name)
        else:
            present = bool(getattr(target, name))
        if not present:
            raise InvalidArgument(f"{dotted} is required", field=dotted, reason="FIELD_REQUIRED")


def _in_body(payload: dict[str, Any], dotted: str) -> bool:
    value: Any = payload
    for part in dotted.split("."):
        if not isinstance(value, dict) or value.get(part) is None:
            return False
        value = value[part]
    return True


def body_onto(payload: dict[str, Any], message: Message, *, forbidden: tuple[str, ...],
              nested: str = "") -> None:
    """Fill the request from a checked JSON body; identity fields may not be sent."""
    for name in forbidden:
        if name in payload:
            raise InvalidArgument(f"{name} may not be sent: it comes from the token or the URL",
                                  field=name, reason="FIELD_NOT_ALLOWED")
    inner = payload.get(nested) if nested else None
    if isinstance(inner, dict) and "brand_id" in inner:
        raise InvalidArgument("brand_id comes from the token and may not be sent",
                              field=f"{nested}.brand_id", reason="FIELD_NOT_ALLOWED")
    check_message(payload, cast(Descriptor, message.DESCRIPTOR), "")
    try:
        json_format.ParseDict(payload, message)
    except json_format.ParseError as error:  # what the walk above cannot see, e.g. bad base64
        raise InvalidArgument(f"body does not match the request: {error}", field="body",
                              reason="BODY_INVALID") from None


async def read_body(request: web.Request) -> dict[str, Any]:
    """The JSON body; nesting too deep for the decoder is bad input, not a server error."""
    try:
        return await json_body(request)
    except RecursionError:
        raise InvalidArgument("body is nested too deeply", field="body",
                              reason="INVALID_JSON") from None
