"""Open-platform use cases: apps, authorisation codes, tokens. Each runs in the caller's
transaction (or on a plain connection for reads)."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from libs.db import Connection
from libs.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    require,
)
from libs.paging import decode_page_token, encode_page_token, page_size
from services.identity.isv.adapters.postgres import IsvRepository
from services.identity.isv.domain.apps import (
    CODE_TTL,
    DEFAULT_CALLS_PER_DAY,
    DEFAULT_CALLS_PER_MINUTE,
    MAX_CALLS_PER_DAY,
    MAX_CALLS_PER_MINUTE,
    App,
    AppStatus,
    Authorization,
    granted_scopes,
    new_app_key,
    new_app_secret,
    new_opaque_token,
    token_hash,
    valid_app_key,
    valid_name,
    valid_quota,
    valid_redirect_uri,
    valid_scopes,
)
from services.identity.isv.domain.sealing import SecretBox


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    refresh_token: str
    access_expires_at: datetime
    refresh_expires_at: datetime
    authorization: Authorization
    issued_at: datetime


@dataclass(frozen=True)
class VerifiedToken:
    authorization: Authorization
    expires_at: datetime


@dataclass(frozen=True)
class AuthorizationsPage:
    authorizations: list[Authorization]
    next_page_token: str


async def create_app(conn: Connection, box: SecretBox, *, request_id: str, request_hash: bytes,
                     name: str, status: AppStatus, scopes: list[str], redirect_uri: str,
                     calls_per_minute: int, calls_per_day: int) -> tuple[App, str]:
    """Registers an app; the same request_id again returns the same app and secret."""
    request_id = require(request_id, "request_id")
    if len(request_id) > 128:
        raise InvalidArgument("request_id must be at most 128 characters", field="request_id",
                              reason="REQUEST_ID_TOO_LONG")
    app_scopes = valid_scopes(scopes)
    if not app_scopes:
        raise InvalidArgument("an app needs at least one scope", field="scopes",
                              reason="FIELD_REQUIRED")
    app = App(new_app_key(), valid_name(name), status, app_scopes,
              valid_redirect_uri(redirect_uri),
              valid_quota(calls_per_minute, DEFAULT_CALLS_PER_MINUTE, MAX_CALLS_PER_MINUTE,
                          "calls_per_minute"),
              valid_quota(calls_per_day, DEFAULT_CALLS_PER_DAY, MAX_CALLS_PER_DAY,
                          "calls_per_day"),
              _now())
    secret = new_app_secret()
    repo = IsvRepository(conn)
    if await repo.add_app(app, box.seal(secret, bound_to=app.app_key), request_id,
                          request_hash):
        return app, secret
    earlier = await repo.app_by_request(request_id)
    assert earlier is not None  # the conflicting row is committed and visible
    earlier_app, sealed, earlier_hash = earlier
    if earlier_hash != request_hash:
        raise FailedPrecondition(
            f"request_id {request_id!r} was already used with different parameters",
            reason="REQUEST_ID_REUSED", metadata={"request_id": request_id})
    return earlier_app, box.open(sealed, bound_to=earlier_app.app_key)


async def get_app(conn: Connection, app_key: str) -> App:
    found = await IsvRepository(conn).get_app(valid_app_key(app_key))
    if found is None:
        raise NotFound(f"app {app_key} does not exist", reason="APP_NOT_FOUND",
                       metadata={"app_key": app_key})
    return found[0]


async def get_signing_key(conn: Connection, box: SecretBox, app_key: str) -> tuple[App, str]:
    found = await IsvRepository(conn).get_app(valid_app_key(app_key))
    if found is None:
        raise NotFound(f"app {app_key} does not exist", reason="APP_NOT_FOUND",
                       metadata={"app_key": app_key})
    app, sealed = found
    return app, box.open(sealed, bound_to=app.app_key)


async def set_app_status(conn: Connection, app_key: str, status: AppStatus) -> App:
    app = await IsvRepository(conn).set_status(valid_app_key(app_key), status)
    if app is None:
        raise NotFound(f"app {app_key} does not exist", reason="APP_NOT_FOUND",
                       metadata={"app_key": app_key})
    return app


async def _authenticated_app(conn: Connection, box: SecretBox, app_key: str,
                             app_secret: str) -> App:
    try:
        app, secret = await get_signing_key(conn, box, app_key)
    except (NotFound, InvalidArgument):
        raise Unauthenticated("app_key or app_secret is wrong",
                              reason="APP_CREDENTIALS_INVALID") from None
    if not hmac.compare_digest(secret.encode(), app_secret.encode()):
        raise Unauthenticated("app_key or app_secret is wrong", reason="APP_CREDENTIALS_INVALID")
    app.require_active()
    return app


async def authorize_app(conn: Connection, *, app_key: str, brand_id: str, shop_id: str,
                        redirect_uri: str, scopes: list[str], granted_by: str
                        ) -> tuple[str, datetime, str]:
    """A merchant grants the app access to one shop; returns (code, expiry, redirect_uri).
    Authorising again replaces the granted scopes of the live authorisation."""
    brand_id, shop_id = require(brand_id, "brand_id"), require(shop_id, "shop_id")
    granted_by = require(granted_by, "granted_by")
    app = await get_app(conn, app_key)
    app.require_active()
    uri = valid_redirect_uri(redirect_uri or app.redirect_uri)
    if uri != app.redirect_uri:
        raise InvalidArgument("redirect_uri does not match the app's registered redirect URI",
                              field="redirect_uri", reason="REDIRECT_URI_MISMATCH")
    scopes_granted = granted_scopes(app, scopes)
    repo = IsvRepository(conn)
    now = _now()
    authorization = await repo.live_authorization(app.app_key, shop_id)
    if authorization is not None and authorization.brand_id != brand_id:
        raise PermissionDenied("the shop is authorised under another brand",
                               reason="SHOP_BRAND_MISMATCH", metadata={"shop_id": shop_id})
    if authorization is None:
        authorization = Authorization(f"auz_{uuid.uuid4().hex}", app.app_key, app.name,
                                      brand_id, shop_id, scopes_granted, granted_by, now, None)
        await repo.add_authorization(authorization)
    else:
        await repo.regrant(authorization.authorization_id, scopes_granted, granted_by, now)
    code = new_opaque_token()
    expires = now + CODE_TTL
    await repo.add_code(token_hash(code), authorization.authorization_id, uri, expires)
    return code, expires, uri


async def _issue_pair(repo: IsvRepository, app: App, authorization: Authorization,
                      now: datetime) -> TokenGrant:
    access, refresh = new_opaque_token(), new_opaque_token()
    pair_id = uuid.uuid4().hex
    grant = TokenGrant(access, refresh, now + app.access_ttl(), now + app.refresh_ttl(),
                       authorization, now)
    await repo.add_token(token_hash(access), "access", authorization.authorization_id, pair_id,
                         grant.access_expires_at)
    await repo.add_token(token_hash(refresh), "refresh", authorization.authorization_id,
                         pair_id, grant.refresh_expires_at)
    return grant


async def exchange_code(conn: Connection, box: SecretBox, *, app_key: str, app_secret: str,
                        code: str) -> TokenGrant:
    app = await _authenticated_app(conn, box, app_key, app_secret)
    repo = IsvRepository(conn)
    now = _now()
    row = await repo.take_code(token_hash(require(code, "code")))
    invalid = Unauthenticated("authorization code is invalid, used or expired",
                              reason="AUTHORIZATION_CODE_INVALID")
    if row is None or row["used_at"] is not None or row["expires_at"] <= now:
        raise invalid
    authorization = await repo.get_authorization(row["authorization_id"])
    if (authorization is None or authorization.revoked_at is not None
            or authorization.app_key != app.app_key):
        raise invalid
    await repo.mark_code_used(row["code_hash"], now)
    return await _issue_pair(repo, app, authorization, now)


async def refresh_access_token(conn: Connection, box: SecretBox, *, app_key: str,
                               app_secret: str, refresh_token: str) -> TokenGrant:
    app = await _authenticated_app(conn, box, app_key, app_secret)
    repo = IsvRepository(conn)
    now = _now()
    row = await repo.get_token(token_hash(require(refresh_token, "refresh_token")), "refresh",
                               lock=True)
    invalid = Unauthenticated("refresh token is invalid, revoked or expired",
                              reason="REFRESH_TOKEN_INVALID")
    if row is None or row["revoked_at"] is not None or row["expires_at"] <= now:
        raise invalid
    authorization = await repo.get_authorization(row["authorization_id"])
    if (authorization is None or authorization.revoked_at is not None
            or authorization.app_key != app.app_key):
        raise invalid
    await repo.revoke_pair(row["pair_id"], now)
    return await _issue_pair(repo, app, authorization, now)


async def verify_access_token(conn: Connection, *, app_key: str,
                              access_token: str) -> VerifiedToken:
    repo = IsvRepository(conn)
    invalid = Unauthenticated("access_token is invalid, revoked or expired",
                              reason="ACCESS_TOKEN_INVALID")
    row = await repo.get_token(token_hash(require(access_token, "access_token")), "access")
    if row is None or row["revoked_at"] is not None or row["expires_at"] <= _now():
        raise invalid
    authorization = await repo.get_authorization(row["authorization_id"])
    if (authorization is None or authorization.revoked_at is not None
            or authorization.app_key != app_key):
        raise invalid
    app = await get_app(conn, app_key)
    app.require_active()
    return VerifiedToken(authorization, row["expires_at"])


async def list_authorizations(conn: Connection, *, brand_id: str, include_revoked: bool,
                              requested_page_size: int, page_token: str) -> AuthorizationsPage:
    brand_id = require(brand_id, "brand_id")
    size = page_size(requested_page_size)
    position = decode_page_token(page_token, ("t", "id"))
    after = None
    if position is not None:
        try:
            after = (datetime.fromisoformat(str(position["t"])), str(position["id"]))
        except ValueError:
            raise InvalidArgument("page_token is not one this service issued",
                                  field="page_token", reason="PAGE_TOKEN_INVALID") from None
    rows = await IsvRepository(conn).list_authorizations(brand_id, include_revoked, size + 1,
                                                         after)
    token = ""
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        token = encode_page_token({"t": last.granted_at.isoformat(),
                                   "id": last.authorization_id})
    return AuthorizationsPage(rows, token)


async def revoke_authorization(conn: Connection, *, brand_id: str, app_key: str,
                               shop_id: str) -> Authorization:
    brand_id, shop_id = require(brand_id, "brand_id"), require(shop_id, "shop_id")
    repo = IsvRepository(conn)
    authorization = await repo.live_authorization(valid_app_key(app_key), shop_id)
    if authorization is None or authorization.brand_id != brand_id:
        raise NotFound(f"app {app_key} holds no authorisation for shop {shop_id}",
                       reason="AUTHORIZATION_NOT_FOUND",
                       metadata={"app_key": app_key, "shop_id": shop_id})
    now = _now()
    await repo.revoke_authorization(authorization.authorization_id, now)
    return Authorization(authorization.authorization_id, authorization.app_key,
                         authorization.app_name, authorization.brand_id, authorization.shop_id,
                         authorization.scopes, authorization.granted_by,
                         authorization.granted_at, now)
