"""libs.grpc_server and libs.grpc_client: honest health, rich errors, and deadlines everywhere.

Servers run in-process on port 0 over a real PostgreSQL and Redis (libs.testing).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from brandclub.membership.v1 import membership_service_pb2 as pb
from brandclub.membership.v1 import membership_service_pb2_grpc as pb_grpc
from libs import grpc_server
from libs.contract import allowed_callers
from libs.errors import Code, DomainError, PermissionDenied, RemoteError
from libs.grpc_client import answers_found, open_channel, remote_error
from libs.grpc_server import Probe
from libs.ports import held_closed_port
from libs.service import Compose, Composition, Resources, RunningService
from libs.testing import contract_channel, identity_of, running_service, service_settings
from services.membership.main import compose as membership_compose

SERVICE = "test.Svc"
METHOD = f"/{SERVICE}/Do"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def svc_policy(method: str) -> frozenset[str] | None:
    """The contract, plus the test service (callable by `operator`, as ContractChannel calls)."""
    return frozenset({"operator"}) if method.startswith(f"/{SERVICE}/") else allowed_callers(method)

# The test method reuses the health messages as carriers: request.service is a command.
Request = health_pb2.HealthCheckRequest
Reply = health_pb2.HealthCheckResponse


# Handlers of "watched:<seconds>" calls that were cancelled (not left running) in the server.
CANCELLED_HANDLERS: list[str] = []


async def do(request: Any, context: Any) -> Any:
    """sleep:<seconds> | watched:<seconds> | domain:<brand> | scoped:<brand> | boom | anything
    else answers."""
    command, _, arg = request.service.partition(":")
    if command == "sleep":
        await asyncio.sleep(float(arg))
    elif command == "watched":
        try:
            await asyncio.sleep(float(arg))
        except asyncio.CancelledError:
            CANCELLED_HANDLERS.append(request.service)
            raise
    elif command == "domain":
        raise PermissionDenied("brand is out of scope", reason="BRAND_SCOPE_MISMATCH",
                               metadata={"brand_id": arg})
    elif command == "scoped":
        raise DomainError("quota used up", reason="QUOTA_EXHAUSTED",
                          metadata={"brand_id": arg}, domain="quota.example")
    elif command == "boom":
        raise RuntimeError("secret internals")
    return Reply(status=SERVING)


def make_compose(*, probes: Sequence[Probe] = ()) -> Compose:
    async def compose(resources: Resources) -> Composition:
        def register(server: Any) -> None:
            handler = grpc.unary_unary_rpc_method_handler(
                do, request_deserializer=Request.FromString,
                response_serializer=Reply.SerializeToString)
            server.add_generic_rpc_handlers(
                [grpc.method_handlers_generic_handler(SERVICE, {"Do": handler})])

        return Composition(service_names=[SERVICE], register=register, extra_probes=probes)

    return compose


def do_call(channel: Any) -> Any:
    return channel.unary_unary(METHOD, request_serializer=Request.SerializeToString,
                               response_deserializer=Reply.FromString)


@pytest.fixture
async def service(db_url: str, redis_url: str) -> AsyncIterator[RunningService]:
    async with running_service(service_settings("membership", db_url, redis_url),
                               make_compose(), authorize=svc_policy) as svc:
        yield svc


@pytest.fixture
async def channel(service: RunningService) -> AsyncIterator[Any]:
    plain = contract_channel(service)
    yield plain
    await plain.close()


async def health_of(channel: Any, name: str = "") -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(Request(service=name), timeout=2)
    status: int = reply.status
    return status


async def eventually_health(channel: Any, expected: int, within: float = 3.0) -> int:
    deadline = time.monotonic() + within
    status = await health_of(channel)
    while status != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        status = await health_of(channel)
    return status


# --- health ----------------------------------------------------------------------------------


async def test_health_serving_when_postgres_and_redis_answer(channel: Any) -> None:
    """With PostgreSQL and Redis reachable, health reports SERVING overall and per service."""
    assert await health_of(channel, "") == SERVING
    assert await health_of(channel, SERVICE) == SERVING


async def test_health_follows_a_failing_extra_probe(db_url: str, redis_url: str) -> None:
    """A failing extra probe turns health NOT_SERVING, and its recovery turns it back."""
    broken = asyncio.Event()

    async def probe() -> None:
        if broken.is_set():
            raise ConnectionError("downstream is gone")

    settings = service_settings("membership", db_url, redis_url)
    async with running_service(settings, make_compose(probes=[probe]),
                               authorize=svc_policy) as svc:
        plain = contract_channel(svc)
        try:
            assert await health_of(plain) == SERVING
            broken.set()
            assert await eventually_health(plain, NOT_SERVING) == NOT_SERVING
            assert await health_of(plain, SERVICE) == NOT_SERVING
            broken.clear()
            assert await eventually_health(plain, SERVING) == SERVING
        finally:
            await plain.close()


async def test_health_not_serving_while_redis_is_unreachable(db_url: str) -> None:
    """A service whose Redis does not answer starts, but reports NOT_SERVING."""
    settings = service_settings("membership", db_url, f"redis://127.0.0.1:{held_closed_port()}/0")
    async with running_service(settings, make_compose(), authorize=svc_policy) as svc:
        plain = contract_channel(svc)
        try:
            assert await health_of(plain) == NOT_SERVING
        finally:
            await plain.close()


async def test_health_not_serving_while_postgres_is_unreachable(redis_url: str) -> None:
    """A service whose PostgreSQL does not answer starts, but reports NOT_SERVING."""
    url = f"postgresql://postgres@127.0.0.1:{held_closed_port()}/nothing"
    async with running_service(service_settings("membership", url, redis_url),
                               make_compose(), authorize=svc_policy) as svc:
        plain = contract_channel(svc)
        try:
            assert await health_of(plain) == NOT_SERVING
        finally:
            await plain.close()


async def test_drain_turns_health_not_serving(service: RunningService, channel: Any) -> None:
    """Once drain starts, health watchers see NOT_SERVING before the server stops."""
    watch = health_pb2_grpc.HealthStub(channel).Watch(Request(service=""))
    assert (await asyncio.wait_for(watch.read(), 2)).status == SERVING
    draining = asyncio.create_task(service.host.drain(0.5))
    try:
        update = await asyncio.wait_for(watch.read(), 2)
        assert update.status == NOT_SERVING
        assert not await service.host.check_health()  # stays down however often it is probed
    finally:
        watch.cancel()
        await draining


async def test_reflection_lists_the_service_and_health(channel: Any) -> None:
    """Server reflection lists the composed service names alongside health and reflection."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(timeout=5)
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    answer = await call.read()
    await call.done_writing()
    names = {service.name for service in answer.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection"} <= names


# --- errors and deadlines on the server -------------------------------------------------------


async def test_domain_error_becomes_status_with_error_info(channel: Any) -> None:
    """A DomainError becomes its gRPC code with an ErrorInfo that remote_error reads back."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await do_call(channel)(Request(service="domain:brd_9"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    error = remote_error(caught.value)
    assert error.code == Code.PERMISSION_DENIED
    assert error.reason == "BRAND_SCOPE_MISMATCH"
    assert error.domain == "membership.brandclub"
    assert error.metadata == {"brand_id": "brd_9"}
    assert error.message == "brand is out of scope"


async def test_explicit_error_domain_is_kept(channel: Any) -> None:
    """A DomainError that names its own domain keeps it across the wire."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await do_call(channel)(Request(service="scoped:brd_3"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    error = remote_error(caught.value)
    assert (error.reason, error.domain, error.metadata) == (
        "QUOTA_EXHAUSTED", "quota.example", {"brand_id": "brd_3"})


async def test_unexpected_exception_is_internal_without_details(channel: Any) -> None:
    """An unexpected exception becomes INTERNAL and does not leak its message."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await do_call(channel)(Request(service="boom"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "secret internals" not in (caught.value.details() or "")
    assert remote_error(caught.value).code == Code.INTERNAL


async def test_call_without_deadline_is_answered(channel: Any) -> None:
    """A call that carries no deadline is still served normally."""
    reply = await do_call(channel)(Request(service="ok"))
    assert reply.status == SERVING


async def test_call_without_deadline_gets_the_server_default(
        channel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A call without a deadline is cut off at the server's default deadline, not left hanging."""
    monkeypatch.setattr(grpc_server, "DEFAULT_DEADLINE_SECONDS", 0.3)
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await do_call(channel)(Request(service="sleep:10"))
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 3.0


async def test_membership_unknown_brand_maps_to_not_found(db_url: str, redis_url: str) -> None:
    """Through a real service: CreateShop for an unknown brand is NOT_FOUND / BRAND_NOT_FOUND."""
    settings = service_settings("membership", db_url, redis_url)
    async with running_service(settings, membership_compose) as svc:
        plain = contract_channel(svc)
        try:
            stub = pb_grpc.MembershipServiceStub(plain)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CreateShop(pb.CreateShopRequest(
                    request_id=uuid.uuid4().hex, brand_id="brd_missing", display_name="Shop"))
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
            error = remote_error(caught.value)
            assert error.reason == "BRAND_NOT_FOUND"
            assert error.domain == "membership.brandclub"
            assert error.metadata["brand_id"] == "brd_missing"
            # And a mutation with no deadline at all is answered.
            created = await stub.CreateBrand(pb.CreateBrandRequest(
                request_id=uuid.uuid4().hex, display_name="Acme",
                mode=pb.PROGRAM_MODE_CONNECTED))
            assert created.brand.brand_id
        finally:
            await plain.close()


# --- client deadlines -------------------------------------------------------------------------


async def test_client_gives_calls_a_deadline(service: RunningService) -> None:
    """A channel from open_channel ends a slow call with DEADLINE_EXCEEDED near its timeout."""
    client = open_channel(service.address, service=SERVICE, tls=identity_of("operator"),
                          peer="membership", timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await do_call(client)(Request(service="sleep:5"))
        elapsed = time.monotonic() - started
    finally:
        await client.close()
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert remote_error(caught.value).code == Code.DEADLINE_EXCEEDED
    assert 0.2 <= elapsed < 2.0


async def test_the_handler_stops_at_the_callers_deadline(channel: Any) -> None:
    """The server enforces the caller's deadline with gRPC's own timer (no second one of
    ours): the handler is cancelled there, not left working for a caller that has gone."""
    CANCELLED_HANDLERS.clear()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await do_call(channel)(Request(service="watched:5"), timeout=0.3)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    for _ in range(40):
        if "watched:5" in CANCELLED_HANDLERS:
            break
        await asyncio.sleep(0.05)
    assert "watched:5" in CANCELLED_HANDLERS


async def test_client_keeps_a_tighter_caller_deadline(service: RunningService) -> None:
    """A deadline the caller set is kept rather than replaced by the channel's default."""
    client = open_channel(service.address, service=SERVICE, tls=identity_of("operator"),
                          peer="membership", timeout=4.0)
    try:
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await do_call(client)(Request(service="sleep:5"), timeout=0.2)
        elapsed = time.monotonic() - started
        fast = await do_call(client)(Request(service="ok"))
    finally:
        await client.close()
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 2.0
    assert fast.status == SERVING


@pytest.mark.parametrize(("outcome", "expected"), [
    (None, True), (grpc.StatusCode.NOT_FOUND, False),
    (grpc.StatusCode.UNAVAILABLE, Code.UNAVAILABLE),
    (grpc.StatusCode.PERMISSION_DENIED, Code.PERMISSION_DENIED)])
async def test_answers_found_tells_missing_from_failing(outcome: grpc.StatusCode | None,
                                                        expected: bool | Code) -> None:
    """An existence check: an answer is True, NOT_FOUND is False, any other failure is raised
    as a RemoteError with its code (never mistaken for "missing")."""

    async def call() -> object:
        if outcome is None:
            return object()
        raise grpc.aio.AioRpcError(outcome, grpc.aio.Metadata(), grpc.aio.Metadata(), "x")

    if isinstance(expected, bool):
        assert await answers_found(call()) is expected
    else:
        with pytest.raises(RemoteError) as caught:
            await answers_found(call())
        assert caught.value.code is expected
