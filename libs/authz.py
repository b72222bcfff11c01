"""Caller authorization: who may call which method, enforced on every call of every service.

The caller is the identity in its mutual-TLS certificate (`libs.tls.caller_of`); the table is a
policy `full_method -> frozenset of caller names | None` (in the services: the proto annotations
read by `libs.contract.allowed_callers`; None means "not annotated" and denies everyone).

- No authenticated identity (a plaintext connection, a certificate without a Brandclub
  identity): UNAUTHENTICATED.
- A caller outside the method's set: PERMISSION_DENIED.
- The standard health service is open to anyone (the kubelet's gRPC probe cannot do TLS);
  reflection answers any authenticated caller.

The check wraps the handler (an aio interceptor has no auth context before the call starts),
for unary and streaming handlers alike; the decision per method is computed once.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health

from libs.logging import get_logger
from libs.tls import caller_of

Policy = Callable[[str], frozenset[str] | None]
log = get_logger("authz")

OPEN_SERVICES = frozenset({health.SERVICE_NAME})
ANY_AUTHENTICATED_SERVICES = frozenset({
    "grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection",
})
_OPEN = "open"
_ANY = "any-authenticated"
Rule = frozenset[str] | str | None


def service_of(full_method: str) -> str:
    """`/pkg.Service/Method` -> `pkg.Service`."""
    return full_method.lstrip("/").split("/", 1)[0]


class AuthorizationInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Refuse every call whose caller the policy does not name for that method."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._rules: dict[str, Rule] = {}

    def rule(self, full_method: str) -> Rule:
        if full_method in self._rules:
            return self._rules[full_method]
        rule: Rule
        service = service_of(full_method)
        if service in OPEN_SERVICES:
            rule = _OPEN
        elif service in ANY_AUTHENTICATED_SERVICES:
            rule = _ANY
        else:
            rule = self._policy(full_method)
        self._rules[full_method] = rule
        return rule

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        method: str = details.method
        rule = self.rule(method)
        handler = await continuation(details)
        if handler is None or rule == _OPEN:
            return handler
        return _guarded(handler, method, rule)


async def check_caller(context: grpc.aio.ServicerContext, method: str, rule: Rule) -> str:
    """The caller's name, or the call is aborted with UNAUTHENTICATED / PERMISSION_DENIED."""
    caller = caller_of(context.peer_identities())
    if caller is None:
        log.warning("rpc_unauthenticated", rpc_method=method, peer=context.peer())
        await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                            "a client certificate issued by the Brandclub CA is required")
        raise AssertionError("unreachable")  # abort raises
    if rule != _ANY and (not isinstance(rule, frozenset) or caller not in rule):
        log.warning("rpc_permission_denied", rpc_method=method, caller=caller)
        await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                            f"caller {caller!r} may not call {method}")
    return caller


def _guarded(handler: Any, method: str, rule: Rule) -> Any:
    if handler.unary_unary is not None:
        unary = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await check_caller(context, method, rule)
            return await unary(request, context)

        return grpc.unary_unary_rpc_method_handler(
            unary_unary, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)
    if handler.stream_unary is not None:
        stream_in = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            await check_caller(context, method, rule)
            return await stream_in(requests, context)

        return grpc.stream_unary_rpc_method_handler(
            stream_unary, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)
    streaming = handler.unary_stream or handler.stream_stream
    factory = (grpc.unary_stream_rpc_method_handler if handler.unary_stream is not None
               else grpc.stream_stream_rpc_method_handler)
    if inspect.isasyncgenfunction(streaming):
        # Stay an async generator: an outer layer (OpenTelemetry's) iterates it.
        async def stream_items(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await check_caller(context, method, rule)
            async for item in streaming(request, context):
                yield item

        return factory(stream_items, request_deserializer=handler.request_deserializer,
                       response_serializer=handler.response_serializer)

    async def stream_writes(request: Any, context: grpc.aio.ServicerContext) -> None:
        # A coroutine handler that writes through the context itself (Health/Watch style).
        await check_caller(context, method, rule)
        await streaming(request, context)

    return factory(stream_writes, request_deserializer=handler.request_deserializer,
                   response_serializer=handler.response_serializer)
