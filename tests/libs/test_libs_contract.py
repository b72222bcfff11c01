"""libs.contract: every rpc declares its callers and idempotency, and retries follow the contract.

The sweeps run over every method of every service in the generated descriptors, so an rpc
added without its annotations, or a call added without naming its caller, fails here.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions

from libs import contract
from libs.grpc_client import _service_config

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos" / "brandclub"
SERVICE_CALLERS = ("identity", "membership", "benefits", "engagement", "messaging", "gateway")
# Where each caller's outbound calls live. The operator is the admin CLI and the stack's seed.
CALLER_SOURCES: dict[str, tuple[str, ...]] = {
    **{name: (f"services/{name}",) for name in SERVICE_CALLERS},
    "operator": ("tools/admin.py", "tools/stack.py"),
}
# The gateway's route tables name the rpc as a string: route(..., "membership", "GetProgram").
STRING_CALL_SOURCES = ("services/gateway/api",)


def every_method() -> Iterator[MethodDescriptor]:
    for service in contract.services().values():
        yield from service.methods


METHODS = sorted(every_method(), key=contract.full_method_name)
METHOD_IDS = [contract.full_method_name(m) for m in METHODS]


def test_every_service_proto_is_loaded() -> None:
    """Each `service` block in protos/ is known to the contract (none escapes the sweeps)."""
    declared = set()
    for proto in PROTOS.rglob("*.proto"):
        text = proto.read_text()
        package = re.search(r"^package ([\w.]+);", text, re.M)
        assert package is not None, proto
        declared |= {f"{package.group(1)}.{name}"
                     for name in re.findall(r"^service (\w+) \{", text, re.M)}
    assert declared == set(contract.services())
    assert len(declared) >= 9


@pytest.mark.parametrize("method", METHODS, ids=METHOD_IDS)
def test_every_rpc_names_known_callers(method: MethodDescriptor) -> None:
    """Every rpc has a non-empty allowed_callers list made only of the seven known names."""
    callers = contract.allowed_callers(contract.full_method_name(method))
    assert callers, f"{contract.full_method_name(method)} names no allowed_callers"
    assert callers <= contract.CALLERS, callers - contract.CALLERS


@pytest.mark.parametrize("method", METHODS, ids=METHOD_IDS)
def test_every_rpc_declares_idempotency(method: MethodDescriptor) -> None:
    """Every rpc declares idempotency_level; request_id writes are IDEMPOTENT, never 'reads'."""
    level = contract.idempotency_level(method)
    assert level is not None, f"{contract.full_method_name(method)} has no idempotency_level"
    fields = {field.name for field in method.input_type.fields}
    if "request_id" in fields:
        assert level == MethodOptions.IDEMPOTENT
    if level == MethodOptions.NO_SIDE_EFFECTS:
        assert "request_id" not in fields


def test_unannotated_method_is_denied() -> None:
    """A method the contract does not annotate (or does not have) answers None: deny."""
    assert contract.allowed_callers("/brandclub.membership.v1.MembershipService/Nope") is None
    assert contract.allowed_callers("/grpc.health.v1.Health/Check") is None
    assert contract.allowed_callers("GetBrand") is None


def test_phone_reveal_is_for_messaging_only() -> None:
    """The plaintext phone leaves identity only towards messaging."""
    assert contract.allowed_callers(
        "/brandclub.identity.v1.IdentityService/RevealPhoneForDelivery") == frozenset({"messaging"})


def test_idempotent_methods_are_the_retry_safe_levels() -> None:
    """idempotent_methods lists exactly the NO_SIDE_EFFECTS and IDEMPOTENT rpcs of a service."""
    for name, service in contract.services().items():
        expected = {m.name for m in service.methods
                    if m.GetOptions().idempotency_level in (MethodOptions.NO_SIDE_EFFECTS,
                                                            MethodOptions.IDEMPOTENT)}
        assert set(contract.idempotent_methods(name)) == expected
    membership = contract.idempotent_methods("brandclub.membership.v1.MembershipService")
    assert "GetBrand" in membership and "OpenCard" in membership
    assert "EvaluateMembers" not in membership
    with pytest.raises(KeyError):
        contract.idempotent_methods("brandclub.membership.v1.MembershipServce")


def _retried(config_json: str) -> set[tuple[str, str]]:
    config = json.loads(config_json)
    return {(name["service"], name["method"])
            for method_config in config["methodConfig"]
            for name in method_config["name"]
            if "UNAVAILABLE" in method_config["retryPolicy"]["retryableStatusCodes"]}


def test_channel_retry_policy_is_the_contract() -> None:
    """The retry policy every channel gets names exactly the contract's retry-safe methods."""
    for name in contract.services():
        assert _retried(_service_config([name])) == {
            (name, method) for method in contract.idempotent_methods(name)}
    both = ["brandclub.membership.v1.MembershipService", "brandclub.membership.v1.SegmentService"]
    assert _retried(_service_config(both)) == {
        (name, method) for name in both for method in contract.idempotent_methods(name)}
    assert _retried(_service_config(["test.Svc"])) == set()


def test_no_hand_kept_retry_lists() -> None:
    """No code passes its own list of retry-safe methods: they come from the contract only."""
    offenders = [str(path.relative_to(ROOT))
                 for folder in ("services", "tools", "libs")
                 for path in (ROOT / folder).rglob("*.py")
                 if "idempotent_methods=" in path.read_text()]
    assert offenders == []


def _calls_in_code() -> dict[str, set[str]]:
    """caller -> full method names its code calls, found by the rpc names it mentions."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for method in METHODS:
        by_name[method.name].append(contract.full_method_name(method))
    calls: dict[str, set[str]] = defaultdict(set)
    for caller, sources in CALLER_SOURCES.items():
        for source in sources:
            root = ROOT / source
            for path in [root] if root.is_file() else sorted(root.rglob("*.py")):
                text = path.read_text()
                names = set(re.findall(r"\.([A-Z]\w+)\(", text))
                if any(str(path.relative_to(ROOT)).startswith(s) for s in STRING_CALL_SOURCES):
                    names |= set(re.findall(r"\"([A-Z]\w+)\"", text))
                for name in names:
                    calls[caller].update(by_name.get(name, ()))
    return calls


def test_every_call_in_code_is_allowed_by_the_contract() -> None:
    """Each rpc a service (or the operator CLI/seed) calls names that caller as allowed."""
    missing = sorted(f"{caller} -> {full}"
                     for caller, fulls in _calls_in_code().items() for full in fulls
                     if caller not in (contract.allowed_callers(full) or ()))
    assert missing == []


def test_service_callers_are_least_privilege() -> None:
    """A service is named on an rpc only if its code calls it (the operator holds the rest)."""
    calls = _calls_in_code()
    extra = sorted(f"{caller} on {contract.full_method_name(method)}"
                   for method in METHODS
                   for caller in contract.allowed_callers(contract.full_method_name(method)) or ()
                   if caller != "operator"
                   and contract.full_method_name(method) not in calls[caller])
    assert extra == []


# --- the derived policy really retries what is safe and nothing else ---------------------

MEMBERSHIP = "brandclub.membership.v1.MembershipService"


@pytest.fixture
async def flaky_membership() -> AsyncIterator[tuple[str, dict[str, int]]]:
    """A membership stand-in whose every first call of a method answers UNAVAILABLE."""
    attempts: dict[str, int] = defaultdict(int)

    def handler(method: str) -> grpc.RpcMethodHandler:
        async def answer(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            attempts[method] += 1
            if attempts[method] == 1:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
            return b""
        return grpc.unary_unary_rpc_method_handler(answer)

    server = grpc.aio.server()
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        MEMBERSHIP, {m: handler(m) for m in ("GetBrand", "OpenCard", "EvaluateMembers")})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", attempts
    finally:
        await server.stop(None)


async def _call(channel: grpc.aio.Channel, method: str) -> Any:
    call = channel.unary_unary(f"/{MEMBERSHIP}/{method}")
    return await call(b"", timeout=5)


async def test_derived_policy_retries_safe_methods_only(
        flaky_membership: tuple[str, dict[str, int]]) -> None:
    """UNAVAILABLE is retried on a read and a request_id write, never on an unknown-safety rpc."""
    address, attempts = flaky_membership
    async with grpc.aio.insecure_channel(address, options=[
            ("grpc.service_config", _service_config([MEMBERSHIP])),
            ("grpc.enable_retries", 1)]) as channel:
        await _call(channel, "GetBrand")
        await _call(channel, "OpenCard")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _call(channel, "EvaluateMembers")
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert dict(attempts) == {"GetBrand": 2, "OpenCard": 2, "EvaluateMembers": 1}
