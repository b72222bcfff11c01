"""The open platform (ISVs): `/routerjson` in the marketplace's wire protocol, the method
catalogue, and the OAuth 2.0 endpoints. Every `/routerjson` outcome is HTTP 200 with JSON."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import grpc
from aiohttp import web
from opentelemetry import trace

from brandclub.identity.v1 import isv_service_pb2 as isv_pb
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from libs.clock import Clock, system_clock
from libs.errors import Code, DomainError, InvalidArgument, PermissionDenied
from libs.grpc_client import remote_error
from libs.logging import get_logger
from libs.metrics import open_platform_call, open_platform_quota_refused
from libs.safetext import refuse_text, text_problem
from services.gateway.adapters.auth import TokenVerifier
from services.gateway.adapters.isv import InvalidToken, IsvDirectory, UnknownApp
from services.gateway.adapters.limits import PENDING, AuditLog, RateLimiter, ReplayStore, Window
from services.gateway.adapters.upstreams import Upstreams
from services.gateway.api.http_common import BodyTimeout, PayloadTooLarge, read_body_bytes
from services.gateway.api.openplatform_methods import METHODS, CallContext, catalogue
from services.gateway.domain import openplatform as proto
from services.gateway.domain.catalogue import ParamError
from services.gateway.domain.openplatform import ProtocolError

log = get_logger("openplatform")

# Failures a method reports inside its result (the caller's business); anything else is ours.
_BUSINESS_CODES = {Code.INVALID_ARGUMENT, Code.NOT_FOUND, Code.ALREADY_EXISTS,
                   Code.FAILED_PRECONDITION, Code.PERMISSION_DENIED, Code.RESOURCE_EXHAUSTED,
                   Code.ABORTED}
# How long a repeated write waits for the first one's answer before being told to retry.
REPLAY_WAIT_SECONDS = 5.0
# Ids (app keys, shop ids, scopes) are far shorter; longer ones are refused at the edge.
MAX_ID_CHARS = 128


@dataclass
class OpenPlatform:
    upstreams: Upstreams
    directory: IsvDirectory
    limiter: RateLimiter
    replays: ReplayStore
    audit: AuditLog
    verifier: TokenVerifier
    clock: Clock = system_clock  # the signed timestamp's window and the audit record's time


OPEN_PLATFORM = web.AppKey("open_platform", OpenPlatform)


def _json(body: dict[str, Any] | bytes, status: int = 200) -> web.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return web.Response(body=raw, status=status, content_type="application/json",
                        charset="utf-8")


def _pairs(text: str, where: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict",
                         max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError(proto.INVALID_PARAMETER,
                            f"the {where} is not UTF-8 url-encoded parameters") from None


async def read_params(request: web.Request) -> dict[str, str]:
    """Query parameters and (for POST) a url-encoded form body, as the raw received strings."""
    sources = [_pairs(urlsplit(request.raw_path).query, "query string")]
    if request.method == "POST" and request.body_exists:
        try:
            body = await read_body_bytes(request, proto.MAX_BODY_BYTES)
        except PayloadTooLarge:
            raise ProtocolError(proto.INVALID_PARAMETER,
                                f"body larger than {proto.MAX_BODY_BYTES} bytes") from None
        except BodyTimeout as timeout:
            raise ProtocolError(proto.INVALID_PARAMETER, timeout.message) from None
        content_type = request.content_type
        if body and content_type not in ("application/x-www-form-urlencoded",
                                         "application/octet-stream"):
            raise ProtocolError(proto.INVALID_PARAMETER,
                                "send parameters in the query or as "
                                "application/x-www-form-urlencoded")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(proto.INVALID_PARAMETER, "the body is not UTF-8") from None
        sources.append(_pairs(text, "body"))
    params: dict[str, str] = {}
    for pairs in sources:
        for key, value in pairs:
            problem = text_problem(key) or text_problem(value)
            if problem is not None:
                raise ProtocolError(proto.INVALID_PARAMETER,
                                    f"parameter {key[:64]!r} {problem}")
            if key in params and params[key] != value:
                raise ProtocolError(proto.INVALID_PARAMETER, f"parameter {key!r} sent twice")
            params[key] = value
    return params


def _required(params: dict[str, str], name: str, missing: proto.ErrorCode) -> str:
    value = params.get(name, "").strip()
    if not value:
        raise ProtocolError(missing)
    return value


@dataclass
class CallRecord:
    app_key: str = ""
    known_app: str = ""  # the app's key once found: the metrics' label (never a typed key)
    shop_id: str = ""
    brand_id: str = ""
    method: str = ""
    outcome: str = ""


async def _dispatch(platform: OpenPlatform, params: dict[str, str],
                    record: CallRecord) -> bytes:
    app_key = _required(params, "app_key", proto.INVALID_APP_KEY)
    record.app_key = app_key[:64]
    try:
        app = await platform.directory.app(app_key)
    except UnknownApp:
        raise ProtocolError(proto.INVALID_APP_KEY) from None
    record.known_app = app.app_key
    method_name = _required(params, "method", proto.MISSING_METHOD)
    record.method = method_name[:128]
    version = _required(params, "v", proto.MISSING_VERSION)
    if version != proto.SUPPORTED_VERSION:
        raise ProtocolError(proto.UNSUPPORTED_VERSION, "only v=2.0 is served")
    stamp = _required(params, "timestamp", proto.MISSING_TIMESTAMP)
    proto.check_timestamp(stamp, platform.clock())
    sign = _required(params, proto.SIGN_PARAM, proto.MISSING_SIGN)
    if not proto.sign_matches(app.secret, params, sign):
        raise ProtocolError(proto.INVALID_SIGN)
    if app.suspended:
        raise ProtocolError(proto.APP_SUSPENDED)
    if params.get("format", "json").strip().lower() not in ("json", ""):
        raise ProtocolError(proto.UNSUPPORTED_FORMAT, "only format=json is served")
    exceeded = await platform.limiter.hit(f"app:{app.app_key}", [
        Window("minute", 60, app.calls_per_minute), Window("day", 86400, app.calls_per_day)])
    if exceeded is not None:
        open_platform_quota_refused(app.app_key)
        raise ProtocolError(proto.CALL_LIMIT, f"more than {exceeded.limit} calls per "
                                              f"{exceeded.name}")
    entry = METHODS.get(method_name)
    if entry is None:
        raise ProtocolError(proto.INVALID_METHOD, "see /routerjson/catalogue")
    spec, handler = entry
    access_token = params.get("access_token", "").strip()
    if not access_token:
        raise ProtocolError(proto.MISSING_ACCESS_TOKEN)
    try:
        grant = await platform.directory.grant(app.app_key, access_token)
    except InvalidToken:
        raise ProtocolError(proto.INVALID_ACCESS_TOKEN) from None
    record.shop_id, record.brand_id = grant.shop_id, grant.brand_id
    if spec.scope not in grant.scopes:
        raise ProtocolError(proto.METHOD_NOT_GRANTED, f"needs scope {spec.scope}")
    raw_json = params.get(proto.JSON_PARAM)
    if raw_json is not None and len(raw_json) > proto.MAX_PARAM_JSON_CHARS:
        raise ProtocolError(proto.INVALID_PARAMETER, "360buy_param_json is too long")
    try:
        values = spec.validate(raw_json)
    except InvalidArgument as error:
        raise ProtocolError(proto.INVALID_PARAMETER, error.message) from None
    normalized_sign = sign.strip().upper()
    if spec.write:
        earlier = await platform.replays.claim(app.app_key, normalized_sign)
        if earlier == PENDING:
            earlier = await platform.replays.wait_answer(app.app_key, normalized_sign,
                                                         REPLAY_WAIT_SECONDS)
            if earlier == PENDING:
                raise ProtocolError(proto.REQUEST_IN_PROGRESS)
        if earlier is not None:
            record.outcome = "replayed"
            return earlier
    try:
        result = await _call(handler, CallContext(platform.upstreams, app.app_key, grant,
                                                  normalized_sign), values, record)
    except BaseException:
        if spec.write:
            with contextlib.suppress(Exception):
                await platform.replays.release(app.app_key, normalized_sign)
        raise
    answer = json.dumps(proto.success_envelope(spec.name, result), ensure_ascii=False).encode()
    if spec.write:
        await platform.replays.store(app.app_key, normalized_sign, answer)
    return answer


async def _call(handler: Any, ctx: CallContext, values: dict[str, Any],
                record: CallRecord) -> dict[str, Any]:
    try:
        data = await handler(ctx, values)
    except ParamError as param_error:
        raise ProtocolError(proto.INVALID_PARAMETER, param_error.message) from None
    except grpc.aio.AioRpcError as rpc_error:
        error: DomainError = remote_error(rpc_error)
    except DomainError as domain_error:
        error = domain_error
    else:
        record.outcome = "ok"
        return proto.business_result(data)
    if error.code in _BUSINESS_CODES:
        record.outcome = f"business:{error.reason}"
        return proto.business_failure(error.reason, error.message, error.metadata)
    log.warning("openplatform_upstream_failed", reason=error.reason, code=error.code.name)
    raise ProtocolError(proto.SERVICE_UNAVAILABLE)


async def routerjson(request: web.Request) -> web.Response:
    """GET or POST, query or form: the marketplace's open-platform protocol."""
    platform = request.app[OPEN_PLATFORM]
    started = time.perf_counter()
    record = CallRecord()
    try:
        answer = await _dispatch(platform, await read_params(request), record)
    except ProtocolError as error:
        record.outcome = f"error:{error.error.code}"
        answer = json.dumps(error.body(), ensure_ascii=False).encode()
    except Exception:
        log.exception("openplatform_unhandled_error")
        record.outcome = "error:1"
        answer = json.dumps(ProtocolError(proto.SERVICE_UNAVAILABLE).body(),
                            ensure_ascii=False).encode()
    latency_ms = (time.perf_counter() - started) * 1000
    trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
    try:
        await platform.audit.record({
            "app_key": record.app_key, "shop_id": record.shop_id, "brand_id": record.brand_id,
            "method": record.method, "outcome": record.outcome,
            "latency_ms": f"{latency_ms:.3f}", "at": platform.clock().isoformat(),
            "trace_id": trace_id})
    except Exception:
        log.exception("openplatform_audit_failed")
    log.info("openplatform_call", app_key=record.app_key, shop_id=record.shop_id,
             api_method=record.method, outcome=record.outcome,
             latency_ms=round(latency_ms, 3))
    open_platform_call(record.known_app or "unknown", record.outcome)
    return _json(answer)


async def method_catalogue(request: web.Request) -> web.Response:
    """The served methods with their parameters, results and scopes, and the error codes."""
    return _json({
        "methods": catalogue(),
        "error_codes": [{"code": e.code, "zh_desc": e.zh_desc, "en_desc": e.en_desc}
                        for e in proto.ERROR_CODES],
    })


# --- OAuth 2.0 -----------------------------------------------------------------------------

def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return _json({"error": error, "error_description": description}, status=status)


async def _oauth_params(request: web.Request) -> dict[str, str]:
    try:
        return await read_params(request)
    except ProtocolError as error:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "invalid_request", "error_description": str(error)}),
            content_type="application/json") from None


async def authorize_shop(platform: OpenPlatform, *, brand_id: str, merchant_user_id: str,
                         app_key: str, shop_id: str, redirect_uri: str,
                         scopes: list[str]) -> isv_pb.AuthorizeAppResponse:
    """A merchant grants an app one shop of their own brand."""
    if not shop_id.strip():
        raise InvalidArgument("shop_id is required", field="shop_id", reason="FIELD_REQUIRED")
    for name, value, limit in (("app_key", app_key, MAX_ID_CHARS),
                               ("shop_id", shop_id, MAX_ID_CHARS),
                               ("redirect_uri", redirect_uri, 2000)):
        refuse_text(value, name)
        if len(value) > limit:
            raise InvalidArgument(f"{name} must be at most {limit} characters", field=name,
                                  reason="FIELD_TOO_LONG")
    if len(scopes) > 50 or any(len(scope) > MAX_ID_CHARS for scope in scopes):
        raise InvalidArgument(f"scope takes at most 50 scopes of {MAX_ID_CHARS} characters",
                              field="scope", reason="FIELD_TOO_LONG")
    try:
        shop = (await platform.upstreams.membership.GetShop(
            membership_pb.GetShopRequest(shop_id=shop_id))).shop
    except grpc.aio.AioRpcError as error:
        raise remote_error(error) from None
    if shop.brand_id != brand_id:
        raise PermissionDenied("the shop belongs to another brand", reason="SHOP_NOT_IN_BRAND",
                               metadata={"shop_id": shop_id})
    try:
        return await platform.upstreams.isv.AuthorizeApp(isv_pb.AuthorizeAppRequest(
            app_key=app_key, brand_id=brand_id, shop_id=shop_id, redirect_uri=redirect_uri,
            scopes=scopes, granted_by=merchant_user_id or f"merchant:{brand_id}"))
    except grpc.aio.AioRpcError as error:
        raise remote_error(error) from None


def redirect_with(uri: str, **params: str) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(key, value) for key, value in params.items() if value]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


async def oauth_authorize(request: web.Request) -> web.Response:
    """The merchant (bearer token) grants the app a shop; 302 back to the app with a code."""
    platform = request.app[OPEN_PLATFORM]
    principal = await platform.verifier.verify(request.headers.get("Authorization"))
    brand_id = principal.require_merchant()
    params = await _oauth_params(request)
    if params.get("response_type", "code") != "code":
        return _oauth_error(400, "unsupported_response_type", "only response_type=code")
    if len(params.get("state", "")) > 512 or len(params.get("scope", "")) > 2000:
        return _oauth_error(400, "invalid_request", "state or scope is too long")
    scopes = [s for s in params.get("scope", "").replace(",", " ").split() if s]
    reply = await authorize_shop(platform, brand_id=brand_id,
                                 merchant_user_id=principal.merchant_user_id,
                                 app_key=params.get("app_key", ""),
                                 shop_id=params.get("shop_id", ""),
                                 redirect_uri=params.get("redirect_uri", ""), scopes=scopes)
    raise web.HTTPFound(redirect_with(reply.redirect_uri, code=reply.code,
                                      state=params.get("state", "")))


def _grant_json(grant: isv_pb.TokenGrant) -> dict[str, Any]:
    return {
        "access_token": grant.access_token,
        "token_type": "Bearer",
        "expires_in": grant.expires_in_seconds,
        "refresh_token": grant.refresh_token,
        "refresh_expires_in": grant.refresh_expires_in_seconds,
        "scope": " ".join(grant.scopes),
        "open_id": grant.shop_id,
        "shop_id": grant.shop_id,
        "brand_id": grant.brand_id,
        "time": int(grant.issue_time.ToDatetime(tzinfo=UTC).timestamp() * 1000),
    }


async def oauth_token(request: web.Request) -> web.Response:
    """grant_type=authorization_code (code) or refresh_token (refresh_token)."""
    platform = request.app[OPEN_PLATFORM]
    params = await _oauth_params(request)
    grant_type = params.get("grant_type", "")
    if request.path.endswith("/refresh_token") and not grant_type:
        grant_type = "refresh_token"
    app_key, app_secret = params.get("app_key", ""), params.get("app_secret", "")
    try:
        if grant_type == "authorization_code":
            reply = await platform.upstreams.isv.ExchangeCode(isv_pb.ExchangeCodeRequest(
                app_key=app_key, app_secret=app_secret, code=params.get("code", "")))
        elif grant_type == "refresh_token":
            refreshed = await platform.upstreams.isv.RefreshAccessToken(
                isv_pb.RefreshAccessTokenRequest(
                    app_key=app_key, app_secret=app_secret,
                    refresh_token=params.get("refresh_token", "")))
            return _json(_grant_json(refreshed.grant))
        else:
            return _oauth_error(400, "unsupported_grant_type",
                                "grant_type must be authorization_code or refresh_token")
    except grpc.aio.AioRpcError as rpc_error:
        error = remote_error(rpc_error)
        if error.reason == "APP_CREDENTIALS_INVALID":
            return _oauth_error(401, "invalid_client", error.message)
        if error.code in (Code.UNAUTHENTICATED, Code.PERMISSION_DENIED):
            return _oauth_error(400, "invalid_grant", error.message)
        if error.code is Code.INVALID_ARGUMENT:
            return _oauth_error(400, "invalid_request", error.message)
        raise error from None
    return _json(_grant_json(reply.grant))


def add_routes(app: web.Application) -> None:
    app.router.add_route("GET", "/routerjson", routerjson)
    app.router.add_route("POST", "/routerjson", routerjson)
    app.router.add_get("/routerjson/catalogue", method_catalogue)
    app.router.add_get("/oauth2/authorize", oauth_authorize)
    for path in ("/oauth2/access_token", "/oauth2/refresh_token"):
        app.router.add_route("GET", path, oauth_token)
        app.router.add_route("POST", path, oauth_token)
