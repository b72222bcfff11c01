"""Text PostgreSQL cannot store is refused before any handler runs, naming the field; errors
that echo huge input still fit the trailers; remote_error never raises on mangled details."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2

from brandclub.identity.v1 import identity_service_pb2 as identity_pb
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from libs.errors import Code, NotFound
from libs.grpc_client import remote_error
from libs.grpc_server import MAX_ERROR_MESSAGE_BYTES, ServiceHost
from libs.safetext import json_text_problem, text_problem
from libs.testing import channel_to, identity_of

SERVICE = "test.Text"
Reply = health_pb2.HealthCheckResponse
# Request types covering top-level, nested repeated, map and bytes fields.
TYPES: dict[str, type[Message]] = {
    "Health": health_pb2.HealthCheckRequest,
    "Program": membership_pb.UpdateProgramRequest,
    "Info": error_details_pb2.ErrorInfo,
    "Rows": identity_pb.AppendPhoneMatchRowsRequest,
}
seen: list[Message] = []


async def echo(request: Message, context: Any) -> health_pb2.HealthCheckResponse:
    seen.append(request)
    if isinstance(request, health_pb2.HealthCheckRequest) and request.service == "huge":
        shop_id = "s" * 5000
        raise NotFound(f"shop {shop_id} does not exist 店铺" * 3, reason="SHOP_NOT_FOUND",
                       metadata={"shop_id": shop_id, "brand_id": "品牌" * 3000,
                                 **{f"k{i}": "v" * 500 for i in range(40)}})
    return Reply(status=health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    host = ServiceHost(service="test", service_names=[SERVICE],
                       authorize=lambda _method: frozenset({"operator"}))
    handlers = {name: grpc.unary_unary_rpc_method_handler(
        echo, request_deserializer=kind.FromString, response_serializer=Reply.SerializeToString)
        for name, kind in TYPES.items()}
    host.server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE,
                                                                               handlers)])
    port = await host.start(0, "127.0.0.1", tls=identity_of("gateway"))
    async with channel_to(f"127.0.0.1:{port}", peer="gateway", caller="operator") as opened:
        yield opened
    await host.drain(0)


async def call(channel: grpc.aio.Channel, method: str, request: Message | bytes) -> Any:
    serialize = (lambda raw: raw) if isinstance(request, bytes) else type(request).SerializeToString
    return await channel.unary_unary(f"/{SERVICE}/{method}", request_serializer=serialize,
                                     response_deserializer=Reply.FromString)(request, timeout=5)


def test_text_problem_names_nul_and_lone_surrogates_only() -> None:
    """NUL and lone surrogates are refused; any other text (CJK, emoji, controls) is fine."""
    cases = [("plain", False), ("店铺 🛍", False), ("tab\tnew\nline", False), ("", False),
             ("a\x00b", True), ("\x00", True), ("x\ud800", True), ("\udfff", True),
             ("店\x00", True)]
    for text, refused in cases:
        assert (text_problem(text) is not None) is refused, repr(text)


def test_json_text_problem_names_the_place_in_the_body() -> None:
    """The path of the first bad string or key in a decoded JSON body is named."""
    assert json_text_problem({"a": [{"b": "ok"}, {"c": "x\x00"}]}) is not None
    assert json_text_problem({"a": [{"b": "ok"}, {"c": "x\x00"}]})[0] == "a[1].c"  # type: ignore[index]
    assert json_text_problem({"spec": {"k\ud800": 1}})[0] == "spec"  # type: ignore[index]
    assert json_text_problem("\x00") == ("body", "contains the NUL character")
    assert json_text_problem({"a": ["fine", 1, None, True, {"b": "店"}]}) is None
    deep: Any = "x\x00"
    for _ in range(5000):  # far deeper than any recursion limit: walked without recursing
        deep = [deep]
    assert json_text_problem(deep) is not None


async def test_nul_in_any_string_field_is_invalid_argument_naming_it(
        channel: grpc.aio.Channel) -> None:
    """A NUL at the top level, deep in a repeated message, or in a map key or value is refused
    with INVALID_ARGUMENT naming the field, and the handler never runs."""
    cases: list[tuple[str, Message, str]] = [
        ("Health", health_pb2.HealthCheckRequest(service="brd\x00x"), "service"),
        ("Program", membership_pb.UpdateProgramRequest(
            request_id="r", brand_id="b", tiers=[membership_pb.Tier(level=1, name="ok"),
                                                 membership_pb.Tier(level=2, name="G\x00ld")]),
         "tiers[1].name"),
        ("Program", membership_pb.UpdateProgramRequest(consent_purposes=["a", "b\x00"]),
         "consent_purposes[1]"),
        ("Info", error_details_pb2.ErrorInfo(metadata={"k": "v\x00"}), "metadata[k]"),
        ("Info", error_details_pb2.ErrorInfo(metadata={"k\x00": "v"}), "metadata[k\x00]"),
    ]
    for method, request, field in cases:
        seen.clear()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(channel, method, request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, field)
        error = remote_error(caught.value)
        assert error.reason == "FIELD_CHARACTERS_INVALID"
        assert error.metadata["field"] == field
        assert seen == []


async def test_nul_in_bytes_and_zero_valued_fields_is_accepted(
        channel: grpc.aio.Channel) -> None:
    """0x00 on the wire that is not inside a string (bytes, zero values) reaches the handler."""
    seen.clear()
    await call(channel, "Rows", identity_pb.AppendPhoneMatchRowsRequest(
        request_id="r", brand_id="b", import_id="i", chunk_index=0, csv=b"\x00\x01a,b\n"))
    program = membership_pb.UpdateProgramRequest(
        request_id="r", tiers=[membership_pb.Tier(level=0, name="Basic")])
    program.tiers[0].SetInParent()
    await call(channel, "Program", program)
    assert len(seen) == 2


async def test_bytes_that_do_not_parse_are_invalid_argument(channel: grpc.aio.Channel) -> None:
    """A string field holding bad UTF-8 (a lone surrogate's bytes) is INVALID_ARGUMENT."""
    seen.clear()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(channel, "Health", b"\x0a\x03\xed\xa0\x80")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert remote_error(caught.value).reason == "REQUEST_MALFORMED"
    assert seen == []


async def test_error_echoing_huge_input_keeps_its_code_and_reason(
        channel: grpc.aio.Channel) -> None:
    """An error whose message and details carry a 5,000-character id arrives as NOT_FOUND with
    its reason, its details cut to fit the trailer (the client's 8 KiB metadata limit)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(channel, "Health", health_pb2.HealthCheckRequest(service="huge"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    error = remote_error(caught.value)
    assert error.code is Code.NOT_FOUND and error.reason == "SHOP_NOT_FOUND"
    assert len(error.message.encode()) <= MAX_ERROR_MESSAGE_BYTES
    assert error.message.startswith("shop sss") and error.message.endswith("…")
    assert error.metadata["shop_id"].startswith("sss") and len(error.metadata) == 16


def test_remote_error_survives_details_that_disagree_or_do_not_parse() -> None:
    """Details whose code differs from the call's, or that are not a Status, still give a typed
    error with the call's own code and message."""
    mismatched = status_pb2.Status(code=5, message="other").SerializeToString()
    for details in (mismatched, b"\xff\xfe not a status"):
        error = grpc.aio.AioRpcError(
            grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(),
            grpc.aio.Metadata(("grpc-status-details-bin", details)), details="bad shop_id")
        remote = remote_error(error)
        assert remote.code is Code.INVALID_ARGUMENT
        assert remote.reason == "INVALID_ARGUMENT" and remote.message == "bad shop_id"


def _service_modules() -> list[Any]:
    """Every generated *_service_pb2 module (every gRPC contract of every service)."""
    import importlib
    import pkgutil

    import brandclub

    modules = []
    for info in pkgutil.walk_packages(brandclub.__path__, "brandclub."):
        if info.name.endswith("_service_pb2"):
            modules.append(importlib.import_module(info.name))
    return modules


def _string_paths(descriptor: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, ...]]:
    """Paths (field names) to every string field, nested messages included (not maps)."""
    paths: list[tuple[str, ...]] = []
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_STRING:
            paths.append((field.name,))
        elif field.type == FieldDescriptor.TYPE_MESSAGE and depth < 3 \
                and not field.message_type.GetOptions().map_entry \
                and not field.message_type.full_name.startswith("google."):
            paths += [(field.name, *rest)
                      for rest in _string_paths(field.message_type, depth=depth + 1)]
    return paths


def _with_text(message_class: Any, path: tuple[str, ...], text: str) -> tuple[Message, str]:
    """A request whose string at `path` holds `text`, and the field path the check names."""
    request = message_class()
    target, names = request, []
    for name in path[:-1]:
        field = target.DESCRIPTOR.fields_by_name[name]
        if field.is_repeated:
            target = getattr(target, name).add()
            names.append(f"{name}[0]")
        else:
            target = getattr(target, name)
            names.append(name)
    field = target.DESCRIPTOR.fields_by_name[path[-1]]
    if field.is_repeated:
        getattr(target, path[-1]).append(text)
        names.append(f"{path[-1]}[0]")
    else:
        setattr(target, path[-1], text)
        names.append(path[-1])
    return request, ".".join(names)


def test_every_rpc_of_every_service_refuses_nul_in_every_string_field() -> None:
    """For every method of every service contract, a NUL in any string field of its request
    (nested and repeated ones included) is refused by the shared server check, naming the
    field; the same request without the NUL passes."""
    from google.protobuf import message_factory

    from libs.safetext import RefusedRequest, checked_deserializer

    checked = 0
    for module in _service_modules():
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                message_class = message_factory.GetMessageClass(method.input_type)
                deserialize = checked_deserializer(message_class.FromString)
                assert deserialize is not None
                for path in _string_paths(method.input_type):
                    request, field = _with_text(message_class, path, "a\x00b")
                    refused = deserialize(request.SerializeToString())
                    assert isinstance(refused, RefusedRequest), (method.full_name, field)
                    assert refused.error.metadata["field"] == field, (method.full_name, field)
                    clean = deserialize(
                        _with_text(message_class, path, "a-b")[0].SerializeToString())
                    assert not isinstance(clean, RefusedRequest), (method.full_name, field)
                    checked += 1
    assert checked > 500
