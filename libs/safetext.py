"""Text that PostgreSQL cannot store, refused at the edge with the field named.

PostgreSQL's `text` refuses the NUL character (0x00) and every string must be valid UTF-8, so
a lone surrogate (which JSON's `\\ud800` escapes can produce) cannot be stored or even put in a
protobuf message. Such input is bad input: it is refused as INVALID_ARGUMENT naming the field,
before any handler runs, instead of failing deep inside a query as an internal error.

`checked_deserializer` wraps a gRPC method's request deserializer: the raw bytes are searched
for 0x00 (one `memchr`), and only a request that contains one is walked for a string field
holding NUL (bytes, fixed-width and zero-valued fields contain 0x00 legitimately). A request
whose bytes do not parse (bad UTF-8 in a string field) is refused the same way. `admit`, called
first in the shared server interceptor, turns a refused request into `InvalidArgument`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from libs.errors import InvalidArgument

REASON = "FIELD_CHARACTERS_INVALID"
_NUL = "\x00"


def text_problem(value: str) -> str | None:
    """Why PostgreSQL could not store the text (NUL or a lone surrogate), or None."""
    if _NUL in value:
        return "contains the NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (not valid Unicode text)"
    return None


def refuse_text(value: str, field: str) -> None:
    """Raise InvalidArgument naming `field` when PostgreSQL could not store `value`."""
    problem = text_problem(value)
    if problem is not None:
        raise InvalidArgument(f"{field} {problem}", field=field, reason=REASON)


def json_text_problem(value: Any) -> tuple[str, str] | None:
    """The first (path, problem) of a string or object key in a decoded JSON value that
    PostgreSQL could not store. Iterative: any nesting the decoder accepted is walked."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                return path or "body", problem
        elif isinstance(item, dict):
            children: list[tuple[str, Any]] = []
            for key, child in item.items():
                problem = text_problem(key)
                if problem is not None:
                    return path or "body", f"has a key that {problem}"
                children.append((f"{path}.{key}" if path else key, child))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", child)
                         for index, child in reversed(list(enumerate(item))))
    return None


def _strings(message: Message, prefix: str) -> Iterator[tuple[str, str]]:
    """Every string in the message (keys of string maps too), with its field path."""
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        message_type = field.message_type
        if message_type is not None and message_type.GetOptions().map_entry:
            key_field = message_type.fields_by_name["key"]
            value_field = message_type.fields_by_name["value"]
            for key, item in value.items():
                where = f"{path}[{key!s}]"
                if key_field.type == FieldDescriptor.TYPE_STRING:
                    yield where, key
                if value_field.type == FieldDescriptor.TYPE_STRING:
                    yield where, item
                elif value_field.type == FieldDescriptor.TYPE_MESSAGE:
                    yield from _strings(item, f"{where}.")
        elif field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                for index, item in enumerate(value):
                    yield f"{path}[{index}]", item
            else:
                yield path, value
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.is_repeated:
                for index, item in enumerate(value):
                    yield from _strings(item, f"{path}[{index}].")
            else:
                yield from _strings(value, f"{path}.")


def message_text_problem(message: Message) -> tuple[str, str] | None:
    """The first (field path, problem) of a string field PostgreSQL could not store."""
    for path, value in _strings(message, ""):
        problem = text_problem(value)
        if problem is not None:
            return path, problem
    return None


class RefusedRequest:
    """Stands in for a request message that must not reach the handler."""

    __slots__ = ("error",)

    def __init__(self, error: InvalidArgument) -> None:
        self.error = error


def checked_deserializer(deserialize: Callable[[bytes], Any] | None
                         ) -> Callable[[bytes], Any] | None:
    """Wrap a request deserializer so that a request with unstorable text, or one whose bytes
    do not parse, becomes a RefusedRequest (the handler never sees it)."""
    if deserialize is None:
        return None
    inner = deserialize

    def checked(raw: bytes) -> Any:
        try:
            request = inner(raw)
        except DecodeError as error:
            return RefusedRequest(InvalidArgument(
                f"the request does not parse: {str(error)[:200]}", field="request",
                reason="REQUEST_MALFORMED"))
        if b"\x00" in raw and isinstance(request, Message):
            found = message_text_problem(request)
            if found is not None:
                path, problem = found
                return RefusedRequest(InvalidArgument(f"{path} {problem}", field=path,
                                                      reason=REASON))
        return request

    return checked


def admit(request: Any) -> Any:
    """The request itself, or the refusal (InvalidArgument naming the field) raised."""
    if type(request) is RefusedRequest:
        raise request.error
    return request
