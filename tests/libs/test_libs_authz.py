"""libs.tls and libs.authz: every method of every service refuses callers the contract does not
name, through the real services (mutual TLS, the real interceptor, the real proto annotations).

For each rpc of each service registered by the six running processes:
- no certificate (the plaintext health-only port): UNAUTHENTICATED;
- a certificate from our CA that names no Brandclub caller: UNAUTHENTICATED;
- each caller outside the rpc's `allowed_callers`: PERMISSION_DENIED;
- an allowed caller: not refused by authorization (whatever the handler then says);
and a certificate signed by another CA never completes the handshake.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from libs import contract
from libs.authz import AuthorizationInterceptor
from libs.config import Env, grpc_listen_host
from libs.grpc_server import ServiceHost
from libs.service import RunningService
from libs.testing import (
    channel_to,
    identity_of,
    running_service,
    service_settings,
    shared_pki,
)
from libs.tls import (
    CALLERS,
    TlsError,
    TlsFiles,
    caller_of,
    issue_pki,
    load_identity,
    peer_of_service,
    secure_channel,
)
from services.benefits.main import compose as benefits_compose
from services.engagement.main import make_compose as engagement_make_compose
from services.gateway.main import RunningGateway, start_gateway
from services.identity.main import compose as identity_compose
from services.membership.main import compose as membership_compose
from services.messaging.main import compose as messaging_compose

REVEAL_PHONE = "/brandclub.identity.v1.IdentityService/RevealPhoneForDelivery"
# The interceptor's own messages, to tell its refusals from a handler's.
DENIED = "caller "
UNAUTHENTICATED = "a client certificate issued by the Brandclub CA is required"


@dataclass
class Target:
    """One listening process: its TLS address, plaintext health address and proto services."""

    name: str
    address: str
    health_address: str
    services: list[str]


@pytest.fixture
async def suite(db_url: str, redis_url: str) -> AsyncIterator[dict[str, Target]]:
    """The six processes in-process, each with its own certificate."""
    composes = {"identity": identity_compose, "membership": membership_compose,
                "benefits": benefits_compose, "engagement": engagement_make_compose(),
                "messaging": messaging_compose}
    async with AsyncExitStack() as stack:
        running: dict[str, RunningService] = {}
        for name, compose in composes.items():
            running[name] = await stack.enter_async_context(running_service(
                service_settings(name, db_url, redis_url), compose))
        gateway: RunningGateway = await start_gateway(
            service_settings("gateway", db_url, redis_url), http_port=0, grpc_port=0,
            bind="127.0.0.1")
        stack.push_async_callback(gateway.stop, 0.2)
        targets = {name: Target(name, service.address, service.health_address,
                                list(service.composition.service_names))
                   for name, service in running.items()}
        targets["gateway"] = Target("gateway", f"127.0.0.1:{gateway.host.port}",
                                    f"127.0.0.1:{gateway.host.health_port}", [])
        yield targets


def methods_of(service_name: str) -> list[str]:
    descriptor = descriptor_pool.Default().FindServiceByName(service_name)
    return [f"/{service_name}/{method.name}" for method in descriptor.methods]


async def call(channel: grpc.aio.Channel, method: str) -> grpc.StatusCode:
    """Send an empty request. UNAUTHENTICATED / PERMISSION_DENIED only when authorization
    refused the call (its own messages); the handler's own answers all count as OK: the call
    got past authorization."""
    stub = channel.unary_unary(method, request_serializer=lambda raw: raw,
                               response_deserializer=lambda raw: raw)
    try:
        await stub(b"", timeout=10)
    except grpc.aio.AioRpcError as error:
        details = error.details() or ""
        if error.code() == grpc.StatusCode.PERMISSION_DENIED:
            return (grpc.StatusCode.PERMISSION_DENIED if details.startswith(DENIED)
                    else grpc.StatusCode.OK)
        if error.code() == grpc.StatusCode.UNAUTHENTICATED:
            return (grpc.StatusCode.UNAUTHENTICATED if details == UNAUTHENTICATED
                    else grpc.StatusCode.OK)
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


async def test_every_rpc_of_every_service_enforces_the_caller_table(
        suite: dict[str, Target]) -> None:
    """The sweep: every method registered by the six processes, every kind of caller."""
    issue_pki(shared_pki(), names=["intruder"])  # our CA, but no Brandclub caller identity
    intruder = load_identity(TlsFiles.in_dir(shared_pki() / "intruder"))
    registered = {service for target in suite.values() for service in target.services}
    # Every service of the contract is served by one of the processes under test.
    assert registered == set(contract.services()), registered ^ set(contract.services())
    failures: list[str] = []
    checked = 0
    for target in suite.values():
        channels = {caller: channel_to(target.address, peer=target.name, caller=caller)
                    for caller in CALLERS}
        plain = grpc.aio.insecure_channel(target.health_address)
        foreign = secure_channel(target.address, intruder, peer=target.name)
        try:
            for service in target.services:
                for method in methods_of(service):
                    allowed = contract.allowed_callers(method)
                    assert allowed, f"{method} is not annotated"
                    checked += 1
                    outcomes = {"no certificate": (await call(plain, method),
                                                   grpc.StatusCode.UNAUTHENTICATED),
                                "intruder": (await call(foreign, method),
                                             grpc.StatusCode.UNAUTHENTICATED)}
                    for caller in CALLERS:
                        if caller not in allowed:
                            outcomes[caller] = (await call(channels[caller], method),
                                                grpc.StatusCode.PERMISSION_DENIED)
                    first_allowed = sorted(allowed)[0]
                    code = await call(channels[first_allowed], method)
                    if code in (grpc.StatusCode.UNAUTHENTICATED,
                                grpc.StatusCode.PERMISSION_DENIED):
                        failures.append(f"{method}: allowed {first_allowed} refused ({code})")
                    failures.extend(f"{method}: {who} got {got.name}, expected {want.name}"
                                    for who, (got, want) in outcomes.items() if got != want)
        finally:
            for channel in [*channels.values(), plain, foreign]:
                await channel.close()
    assert checked >= 100, checked
    assert not failures, "\n".join(failures)


async def test_a_certificate_from_another_ca_never_reaches_a_handler(
        suite: dict[str, Target], tmp_path: Path) -> None:
    """A certificate with a valid-looking identity but signed by another CA is refused at the
    handshake, by every process."""
    other = load_identity(TlsFiles.in_dir(issue_pki(tmp_path / "other-ca") / "gateway"))
    for target in suite.values():
        async with secure_channel(target.address, other, peer=target.name) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, target.name


async def test_plaintext_callers_get_health_only_and_tls_port_refuses_them(
        suite: dict[str, Target]) -> None:
    """The kubelet's plaintext probe gets health; reflection there is UNAUTHENTICATED; the TLS
    port refuses a plaintext client and a TLS client without a certificate."""
    identity = suite["identity"]
    async with grpc.aio.insecure_channel(identity.health_address) as plain:
        reply = await health_pb2_grpc.HealthStub(plain).Check(
            health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stream = reflection_pb2_grpc.ServerReflectionStub(plain).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in stream:
                pass
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    async with grpc.aio.insecure_channel(identity.address) as plain_to_tls:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await health_pb2_grpc.HealthStub(plain_to_tls).Check(
                health_pb2.HealthCheckRequest(), timeout=5)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    no_cert = grpc.ssl_channel_credentials(root_certificates=identity_of("operator").ca)
    async with grpc.aio.secure_channel(identity.address, no_cert, options=[
            ("grpc.ssl_target_name_override", "identity")]) as anonymous:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await health_pb2_grpc.HealthStub(anonymous).Check(
                health_pb2.HealthCheckRequest(), timeout=5)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_only_messaging_may_reveal_a_phone(suite: dict[str, Target]) -> None:
    """RevealPhoneForDelivery: messaging is let in, every other caller is PERMISSION_DENIED."""
    assert contract.allowed_callers(REVEAL_PHONE) == frozenset({"messaging"})
    identity = suite["identity"]
    for caller in CALLERS:
        async with channel_to(identity.address, peer="identity", caller=caller) as channel:
            code = await call(channel, REVEAL_PHONE)
        if caller == "messaging":
            assert code not in (grpc.StatusCode.PERMISSION_DENIED,
                                grpc.StatusCode.UNAUTHENTICATED), code
        else:
            assert code == grpc.StatusCode.PERMISSION_DENIED, caller


async def test_an_unannotated_method_is_denied_to_every_caller() -> None:
    """A method the contract does not annotate (None) is refused even to the operator, for
    unary and streaming handlers alike."""
    assert contract.allowed_callers("/brandclub.identity.v1.IdentityService/Nope") is None

    async def unary(request: bytes, context: Any) -> bytes:
        return request

    async def streaming(request: bytes, context: Any) -> AsyncIterator[bytes]:
        yield request

    host = ServiceHost(service="identity", service_names=["test.Unannotated"],
                       authorize=contract.allowed_callers)
    host.server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        "test.Unannotated", {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Stream": grpc.unary_stream_rpc_method_handler(streaming)})])
    port = await host.start(0, "127.0.0.1", tls=identity_of("identity"))
    try:
        for caller in CALLERS:
            async with channel_to(f"127.0.0.1:{port}", peer="identity",
                                  caller=caller) as channel:
                assert await call(channel, "/test.Unannotated/Unary") \
                    == grpc.StatusCode.PERMISSION_DENIED
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    async for _ in channel.unary_stream("/test.Unannotated/Stream")(b"x"):
                        pass
                assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await host.drain(0)


async def test_streaming_handlers_pass_through_for_an_allowed_caller() -> None:
    """The guard forwards what an async-generator handler yields, and lets a coroutine handler
    write through its context, once the caller is allowed; others are refused before either.
    (A bare server with only the guard: OpenTelemetry's interceptor in ServiceHost accepts
    generator handlers only.)"""
    async def generator(request: bytes, context: Any) -> AsyncIterator[bytes]:
        for index in range(3):
            yield request + bytes([index])

    async def writer(request: bytes, context: Any) -> None:
        await context.write(request + b"!")

    server = grpc.aio.server(interceptors=[
        AuthorizationInterceptor(lambda method: frozenset({"gateway"}))])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("test.Stream", {
        "Gen": grpc.unary_stream_rpc_method_handler(generator),
        "Write": grpc.unary_stream_rpc_method_handler(writer)})])
    port = server.add_secure_port("127.0.0.1:0", identity_of("identity").server_credentials())
    await server.start()
    try:
        async with channel_to(f"127.0.0.1:{port}", peer="identity", caller="gateway") as channel:
            got = [item async for item in channel.unary_stream("/test.Stream/Gen")(b"a")]
            wrote = [item async for item in channel.unary_stream("/test.Stream/Write")(b"b")]
        assert got == [b"a\x00", b"a\x01", b"a\x02"]
        assert wrote == [b"b!"]
        async with channel_to(f"127.0.0.1:{port}", peer="identity", caller="membership") \
                as channel:
            for name in ("Gen", "Write"):
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    async for _ in channel.unary_stream(f"/test.Stream/{name}")(b"c"):
                        pass
                assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await server.stop(0)


def test_caller_identity_is_the_spiffe_uri_of_a_known_caller() -> None:
    """Only `spiffe://brandclub/<caller>` names a caller; CN-like or DNS names do not."""
    assert caller_of([b"spiffe://brandclub/messaging", b"messaging"]) == "messaging"
    assert caller_of([b"messaging", b"localhost"]) is None
    assert caller_of([b"spiffe://brandclub/intruder"]) is None
    assert caller_of([b"spiffe://other/messaging"]) is None
    assert caller_of(None) is None


def test_decisions_are_cached_per_method() -> None:
    """The policy is asked once per method, not per call (hot path)."""
    asked: list[str] = []

    def policy(method: str) -> frozenset[str] | None:
        asked.append(method)
        return frozenset({"gateway"})

    interceptor = AuthorizationInterceptor(policy)
    for _ in range(3):
        interceptor.rule("/brandclub.membership.v1.MembershipService/GetBrand")
    interceptor.rule("/grpc.health.v1.Health/Check")
    assert asked == ["/brandclub.membership.v1.MembershipService/GetBrand"]


def test_listen_host_is_loopback_in_development_and_every_interface_otherwise() -> None:
    """GRPC_LISTEN_HOST wins; else 127.0.0.1 in development mode, [::] anywhere else."""
    cases = [({"BRANDCLUB_ENV": "development"}, "127.0.0.1"), ({}, "[::]"),
             ({"BRANDCLUB_ENV": "production"}, "[::]"),
             ({"BRANDCLUB_ENV": "development", "GRPC_LISTEN_HOST": "0.0.0.0"}, "0.0.0.0"),
             ({"GRPC_LISTEN_HOST": "10.0.0.7"}, "10.0.0.7")]
    for env, expected in cases:
        assert grpc_listen_host(Env(env), env) == expected, env


def test_missing_certificate_files_stop_the_start_naming_the_setting(tmp_path: Path) -> None:
    """Without its certificate a process refuses to start, and says which setting to fix."""
    with pytest.raises(TlsError, match="TLS_CA_FILE"):
        load_identity(TlsFiles("", "", ""))
    with pytest.raises(TlsError, match="TLS_CERT_FILE"):
        load_identity(TlsFiles(str(shared_pki() / "identity" / "ca.crt"),
                               str(tmp_path / "absent.crt"), str(tmp_path / "absent.key")))
    (tmp_path / "junk.crt").write_text("not a certificate")
    with pytest.raises(TlsError, match="not a PEM file"):
        load_identity(TlsFiles(str(tmp_path / "junk.crt"), str(tmp_path / "junk.crt"),
                               str(tmp_path / "junk.crt")))


def test_every_service_package_maps_to_its_process() -> None:
    """A client checks the server certificate of the process that serves the package."""
    for service in contract.services():
        assert peer_of_service(service) in CALLERS
    assert peer_of_service("brandclub.identity.v1.IsvService") == "identity"
    with pytest.raises(ValueError):
        peer_of_service("grpc.health.v1.Health")


def test_settings_carry_each_services_own_certificate() -> None:
    """libs.testing gives every service its own certificate (TLS_DIR), as ./dev up does."""
    for name in ("identity", "messaging"):
        settings = service_settings(name, "postgresql://unused/x", "redis://unused/0")
        assert Path(settings.tls_files.cert_file).parent.name == name
        assert caller_of([f"spiffe://brandclub/{name}".encode()]) == name
