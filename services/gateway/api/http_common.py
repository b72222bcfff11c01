"""HTTP plumbing shared by the gateway's APIs: access log, errors as JSON, request ids."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import structlog
from aiohttp import web
from opentelemetry import propagate, trace

from libs.errors import Code, DomainError, InvalidArgument
from libs.grpc_client import remote_error
from libs.logging import get_logger
from libs.outages import is_outage

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


REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID = web.RequestKey("request_id", str)
_REQUEST_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


def _incoming_request_id(value: str) -> str:
    value = value.strip()[:128]
    return value if value and set(value) <= _REQUEST_ID_OK else uuid.uuid4().hex


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer carries X-Request-Id (the caller's, when it sent a sane one); it is on
    every log line of the request and in every JSON error."""
    rid = _incoming_request_id(request.headers.get(REQUEST_ID_HEADER, ""))
    request[REQUEST_ID] = rid
    structlog.contextvars.bind_contextvars(http_request_id=rid)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers[REQUEST_ID_HEADER] = rid
        raise
    finally:
        structlog.contextvars.unbind_contextvars("http_request_id")
    response.headers[REQUEST_ID_HEADER] = rid
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
        body = error_body(error)
        status = HTTP_STATUS.get(error.code, 500)
    except grpc.aio.AioRpcError as rpc_error:
        remote = remote_error(rpc_error)
        body = error_body(remote)
        status = HTTP_STATUS.get(remote.code, 502)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            body = {"error": {"code": "HTTP_ERROR",
                              "reason": exc.reason.upper().replace(" ", "_"),
                              "message": exc.text or exc.reason, "details": {}}}
            status = exc.status
        else:
            raise
    except Exception as exc:
        if is_outage(exc):  # Redis (or another dependency) unreachable: retryable, not a bug
            log.warning("http_dependency_unavailable", error=repr(exc))
            body = {"error": {"code": "UNAVAILABLE", "reason": "DEPENDENCY_UNAVAILABLE",
                              "message": "a dependency is unavailable; retry later",
                              "details": {}}}
            status = HTTP_STATUS[Code.UNAVAILABLE]
        else:
            log.exception("http_unhandled_error")
            body = {"error": {"code": "INTERNAL", "reason": "INTERNAL",
                              "message": "internal error", "details": {}}}
            status = 500
    body["error"]["request_id"] = request.get(REQUEST_ID, "")
    return web.json_response(body, status=status)


def request_id(request: web.Request) -> str:
    """The client's Idempotency-Key, or a fresh id when it sent none."""
    key = request.headers.get("Idempotency-Key", "").strip()
    return key[:128] if key else uuid.uuid4().hex


MAX_JSON_BODY_BYTES = 256 * 1024


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; a clear 400 naming the problem otherwise."""
    if request.content_length is not None and request.content_length > MAX_JSON_BODY_BYTES:
        raise InvalidArgument(f"body larger than {MAX_JSON_BODY_BYTES} bytes", field="body",
                              reason="BODY_TOO_LARGE")
    raw = await request.content.read(MAX_JSON_BODY_BYTES + 1)
    if len(raw) > MAX_JSON_BODY_BYTES:
        raise InvalidArgument(f"body larger than {MAX_JSON_BODY_BYTES} bytes", field="body",
                              reason="BODY_TOO_LARGE")
    try:
        value = json.loads(raw or b"{}")
    except (ValueError, RecursionError):  # too deep a nesting is bad input, not a 500
        raise InvalidArgument("body is not valid JSON", field="body",
                              reason="INVALID_JSON") from None
    if not isinstance(value, dict):
        raise InvalidArgument("body must be a JSON object", field="body", reason="INVALID_JSON")
    return value


def field_str(body: dict[str, Any], name: str, *, required: bool = False,
              max_length: int = 256) -> str:
    value = body.get(name)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string", field=name, reason="FIELD_TYPE_INVALID")
    value = value.strip()
    if required and not value:
        raise InvalidArgument(f"{name} is required", field=name, reason="FIELD_REQUIRED")
    if len(value) > max_length:
        raise InvalidArgument(f"{name} must be at most {max_length} characters", field=name,
                              reason="FIELD_TOO_LONG")
    return value


def field_str_list(body: dict[str, Any], name: str, *, max_items: int = 50) -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{name} must be an array of strings", field=name,
                              reason="FIELD_TYPE_INVALID")
    if len(value) > max_items:
        raise InvalidArgument(f"{name} has more than {max_items} items", field=name,
                              reason="FIELD_TOO_LONG")
    return [v.strip() for v in value]


def page_query(request: web.Request) -> tuple[int, str]:
    """page_size and page_token from the query string (AIP-158)."""
    raw = request.query.get("page_size", "0").strip() or "0"
    if not raw.isdigit() or int(raw) > 1000:
        raise InvalidArgument("page_size must be an integer between 0 and 200",
                              field="page_size", reason="FIELD_TYPE_INVALID")
    token = request.query.get("page_token", "")
    if len(token) > 1024:
        raise InvalidArgument("page_token is not one this API issued", field="page_token",
                              reason="PAGE_TOKEN_INVALID")
    return int(raw), token
