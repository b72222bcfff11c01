"""gRPC clients: a deadline on every call, retries only for idempotent methods."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from libs.errors import Code, RemoteError

DEFAULT_TIMEOUT_SECONDS = 5.0


class DeadlineInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Give every call a deadline unless the caller set a tighter one."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        if details.timeout is None:
            details = details._replace(timeout=self._timeout)
        return await continuation(details, request)


def _service_config(service: str, idempotent_methods: Iterable[str]) -> str:
    """Retry UNAVAILABLE only on methods that are safe to repeat (reads, request_id writes)."""
    names = [{"service": service, "method": method} for method in idempotent_methods]
    config: dict[str, Any] = {"methodConfig": []}
    if names:
        config["methodConfig"].append({
            "name": names,
            "retryPolicy": {
                "maxAttempts": 4,
                "initialBackoff": "0.05s",
                "maxBackoff": "1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        })
    return json.dumps(config)


def open_channel(
    address: str,
    *,
    service: str,
    idempotent_methods: Iterable[str] = (),
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        address,
        options=[
            ("grpc.service_config", _service_config(service, idempotent_methods)),
            ("grpc.enable_retries", 1),
            ("grpc.keepalive_time_ms", 30_000),
        ],
        interceptors=[*aio_client_interceptors(), DeadlineInterceptor(timeout)],
    )


def remote_error(error: grpc.aio.AioRpcError) -> RemoteError:
    """Turn a failed call back into a typed error, keeping the callee's ErrorInfo."""
    code_value = error.code().value[0]
    try:
        code = Code(code_value)
    except ValueError:
        code = Code.INTERNAL
    reason, domain, metadata = code.name, "", {}
    status = rpc_status.from_call(error)
    if status is not None:
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
    return RemoteError(code, error.details() or code.name, reason=reason, domain=domain,
                       metadata=metadata)
