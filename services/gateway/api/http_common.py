"""HTTP plumbing shared by the gateway's APIs: access log, errors as JSON, request ids."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import structlog
from aiohttp import web
from google.protobuf.descriptor import FieldDescriptor
from opentelemetry import propagate, trace

from libs.errors import Code, DomainError, InvalidArgument
from libs.grpc_client import remote_error
from libs.logging import get_logger
from libs.outages import is_outage
from libs.safetext import REASON as TEXT_REASON
from libs.safetext import json_text_problem, refuse_text

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
        status = getattr(error, "http_status", None) or HTTP_STATUS.get(error.code, 500)
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
# A body must arrive within this long once its head has (slow-body denial of service); the
# head itself is bounded by the HTTP server (api/http_server.py).
BODY_READ_SECONDS = 20.0


class PayloadTooLarge(InvalidArgument):
    """A body over the route's limit: HTTP 413 naming the limit."""

    http_status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(f"body larger than {limit} bytes", field="body",
                         reason="BODY_TOO_LARGE", metadata={"limit_bytes": str(limit)})


class BodyTimeout(InvalidArgument):
    """A body that did not arrive in time: HTTP 408."""

    http_status = 408

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the body did not arrive within {seconds:g} s", field="body",
                         reason="BODY_TIMEOUT")


async def read_body_bytes(request: web.Request, limit: int,
                          seconds: float = BODY_READ_SECONDS) -> bytes:
    """The whole body (every chunk of a chunked one), refused with 413 as soon as it passes
    `limit` bytes and with 408 when it does not arrive within `seconds`."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(limit)
    body = bytearray()
    try:
        async with asyncio.timeout(seconds):
            while chunk := await request.content.read(65536):
                body += chunk
                if len(body) > limit:
                    raise PayloadTooLarge(limit)
    except TimeoutError:
        raise BodyTimeout(seconds) from None
    return bytes(body)


async def json_body(request: web.Request, limit: int = MAX_JSON_BODY_BYTES) -> dict[str, Any]:
    """The request's JSON object; a clear 400 naming the problem otherwise (413 when too
    large). Text PostgreSQL cannot store (NUL, lone surrogates) is refused naming its place."""
    raw = await read_body_bytes(request, limit)
    try:
        value = json.loads(raw or b"{}")
    except (ValueError, RecursionError):  # too deep a nesting is bad input, not a 500
        raise InvalidArgument("body is not valid JSON", field="body",
                              reason="INVALID_JSON") from None
    if not isinstance(value, dict):
        raise InvalidArgument("body must be a JSON object", field="body", reason="INVALID_JSON")
    found = json_text_problem(value)
    if found is not None:
        path, problem = found
        raise InvalidArgument(f"{path} {problem}", field=path, reason=TEXT_REASON)
    return value


# Every id in a path is far shorter; a longer one is refused here instead of travelling to a
# service (and into its error details).
MAX_PATH_PARAM_CHARS = 128
MAX_QUERY_VALUE_CHARS = 2048
# Headers whose values become ids or keys in a service call.
_ID_HEADERS = ("Idempotency-Key", "X-Device-Id")
MAX_ID_HEADER_CHARS = 128
# These parse (and answer) their own parameters in their own protocol.
_SELF_CHECKED_PREFIXES = ("/routerjson", "/oauth2/")


@web.middleware
async def input_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Path parameters, query values and id headers: text PostgreSQL can store, ids of a sane
    length; 400 naming the parameter otherwise, before any handler runs."""
    if not request.path.startswith(_SELF_CHECKED_PREFIXES):
        for name, value in request.match_info.items():
            refuse_text(value, name)
            if len(value) > MAX_PATH_PARAM_CHARS:
                raise InvalidArgument(f"{name} must be at most {MAX_PATH_PARAM_CHARS} "
                                      "characters", field=name, reason="FIELD_TOO_LONG")
        for name, value in request.query.items():
            refuse_text(name, "query")
            refuse_text(value, name)
            if len(value) > MAX_QUERY_VALUE_CHARS:
                raise InvalidArgument(f"{name} must be at most {MAX_QUERY_VALUE_CHARS} "
                                      "characters", field=name, reason="FIELD_TOO_LONG")
    for header in _ID_HEADERS:
        value = request.headers.get(header, "")
        refuse_text(value, header)
        # Refused rather than cut: two keys sharing their first 128 characters must not
        # share one stored answer.
        if len(value.strip()) > MAX_ID_HEADER_CHARS:
            raise InvalidArgument(f"{header} must be at most {MAX_ID_HEADER_CHARS} characters",
                                  field=header, reason="FIELD_TOO_LONG")
    return await handler(request)


def field_int(body: dict[str, Any], name: str, field: FieldDescriptor, *,
              minimum: int | None = None) -> int:
    """An integer from JSON, checked against the range of the protobuf field it goes into."""
    value = body.get(name, 0)
    if value is None:
        value = 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"{name} must be an integer", field=name,
                              reason="FIELD_TYPE_INVALID")
    low, high = integer_range(field)
    if minimum is not None:
        low = max(low, minimum)
    if not low <= value <= high:
        raise InvalidArgument(f"{name} must be between {low} and {high}", field=name,
                              reason="FIELD_OUT_OF_RANGE")
    return value


_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2 ** 31), 2 ** 31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2 ** 31), 2 ** 31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2 ** 31), 2 ** 31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2 ** 32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2 ** 32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2 ** 63), 2 ** 63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2 ** 63), 2 ** 63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2 ** 63), 2 ** 63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2 ** 64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2 ** 64 - 1),
}


def integer_range(field: FieldDescriptor) -> tuple[int, int]:
    """The values a protobuf integer field can hold."""
    return _RANGES[field.type]


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
    if not (raw.isascii() and raw.isdigit()) or int(raw) > 1000:
        raise InvalidArgument("page_size must be an integer between 0 and 200",
                              field="page_size", reason="FIELD_TYPE_INVALID")
    token = request.query.get("page_token", "")
    if len(token) > 1024:
        raise InvalidArgument("page_token is not one this API issued", field="page_token",
                              reason="PAGE_TOKEN_INVALID")
    return int(raw), token
