"""HTTP plumbing shared by the gateway's APIs: access log, errors as JSON, request ids."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import structlog
from aiohttp import web
from opentelemetry import propagate, trace

from libs.errors import Code, DomainError
from libs.grpc_client import remote_error
from libs.logging import get_logger

log = get_logger("http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HTTP_STATUS = {
    Code.INVALID_ARGUMENT: 400,
    Code.UNAUTHENTICATED: 401,
    Code.PERMISSION_DENIED: 403,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.FAILED_PRECONDITION: 409,
    Code.ABORTED: 409,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DEADLINE_EXCEEDED: 504,
}


def error_body(error: DomainError) -> dict[str, Any]:
    return {"error": {"code": error.code.name, "reason": error.reason,
                      "message": error.message, "details": error.metadata}}


def json_error(status: int, code: str, reason: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "reason": reason, "message": message,
                                        "details": {}}}, status=status)


_tracer = trace.get_tracer("brandclub.gateway.http")


@web.middleware
async def tracing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A server span per request, continuing the caller's W3C trace when it sent one."""
    route = request.match_info.route.resource
    name = f"{request.method} {route.canonical if route is not None else request.path}"
    with _tracer.start_as_current_span(name, context=propagate.extract(request.headers),
                                       kind=trace.SpanKind.SERVER) as span:
        span.set_attribute("http.request.method", request.method)
        span.set_attribute("url.path", request.path)
        response = await handler(request)
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            span.set_status(trace.StatusCode.ERROR)
        response.headers["X-Trace-Id"] = format(span.get_span_context().trace_id, "032x")
        return response


@web.middleware
async def access_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One line per request, with the trace id the tracing middleware put in context."""
    structlog.contextvars.bind_contextvars(http_method=request.method, path=request.path)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        log.info("http", status=status,
                 duration_ms=round((time.perf_counter() - started) * 1000, 3))
        structlog.contextvars.unbind_contextvars("http_method", "path")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Domain and upstream errors become JSON with a meaningful HTTP status; never a stack."""
    try:
        return await handler(request)
    except DomainError as error:
        return web.json_response(error_body(error), status=HTTP_STATUS.get(error.code, 500))
    except grpc.aio.AioRpcError as rpc_error:
        remote = remote_error(rpc_error)
        return web.json_response(error_body(remote), status=HTTP_STATUS.get(remote.code, 502))
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            return json_error(exc.status, "HTTP_ERROR", exc.reason.upper().replace(" ", "_"),
                              exc.text or exc.reason)
        raise
    except Exception:
        log.exception("http_unhandled_error")
        return json_error(500, "INTERNAL", "INTERNAL", "internal error")


def request_id(request: web.Request) -> str:
    """The client's Idempotency-Key, or a fresh id when it sent none."""
    key = request.headers.get("Idempotency-Key", "").strip()
    return key[:128] if key else uuid.uuid4().hex
