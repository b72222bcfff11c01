"""Authorisations of apps by merchants (OAuth 2.0 authorisation-code flow): granting one
shop, exchanging the code, refreshing, verifying access tokens, listing and revoking."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from libs.clock import Clock
from libs.db import Connection
from libs.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated, require
from libs.idempotency import CommitOnce
from libs.paging import decode_time_and_id, keyset_page, page_size, time_and_id
from services.identity.isv.adapters.postgres import IsvRepository
from services.identity.isv.domain.apps import (
    CODE_TTL,
    App,
    Authorization,
    granted_scopes,
    new_opaque_token,
    token_hash,
    valid_app_key,
    valid_redirect_uri,
)
from services.identity.isv.domain.sealing import SecretBox
from services.identity.isv.usecases.apps import app_of, authenticated_app
from services.identity.isv.usecases.context import IsvContext, Reply


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


async def authorize_app(ctx: IsvContext, *, app_key: str, brand_id: str, shop_id: str,
                        redirect_uri: str, scopes: list[str],
                        granted_by: str) -> tuple[str, datetime, str]:
    """A merchant grants the app access to one shop; returns (code, expiry, redirect_uri).
    Authorising again replaces the granted scopes of the live authorisation."""
    async with ctx.db.transaction() as conn:
        return await _authorize(conn, app_key=app_key, brand_id=brand_id, shop_id=shop_id,
                                redirect_uri=redirect_uri, scopes=scopes,
                                granted_by=granted_by, clock=ctx.clock)


async def _authorize(conn: Connection, *, app_key: str, brand_id: str, shop_id: str,
                     redirect_uri: str, scopes: list[str], granted_by: str,
                     clock: Clock) -> tuple[str, datetime, str]:
    brand_id, shop_id = require(brand_id, "brand_id"), require(shop_id, "shop_id")
    granted_by = require(granted_by, "granted_by")
    app = await app_of(conn, app_key)
    app.require_active()
    uri = valid_redirect_uri(redirect_uri or app.redirect_uri)
    if uri != app.redirect_uri:
        raise InvalidArgument("redirect_uri does not match the app's registered redirect URI",
                              field="redirect_uri", reason="REDIRECT_URI_MISMATCH")
    scopes_granted = granted_scopes(app, scopes)
    repo = IsvRepository(conn)
    now = clock()
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


async def exchange_code(ctx: IsvContext, *, app_key: str, app_secret: str,
                        code: str) -> TokenGrant:
    """A code (used once, before its expiry, by the app it was issued to) for a token pair."""
    async with ctx.db.transaction() as conn:
        return await _exchange(conn, ctx.box, app_key=app_key, app_secret=app_secret,
                               code=code, clock=ctx.clock)


async def _exchange(conn: Connection, box: SecretBox, *, app_key: str, app_secret: str,
                    code: str, clock: Clock) -> TokenGrant:
    app = await authenticated_app(conn, box, app_key, app_secret)
    repo = IsvRepository(conn)
    now = clock()
    taken = await repo.take_code(token_hash(require(code, "code")))
    invalid = Unauthenticated("authorization code is invalid, used or expired",
                              reason="AUTHORIZATION_CODE_INVALID")
    if taken is None or not taken.usable(now):
        raise invalid
    authorization = await repo.get_authorization(taken.authorization_id)
    if authorization is None or not authorization.live_for(app.app_key):
        raise invalid
    await repo.mark_code_used(taken.code_hash, now)
    return await _issue_pair(repo, app, authorization, now)


async def refresh_access_token(ctx: IsvContext, *, app_key: str, app_secret: str,
                               refresh_token: str) -> TokenGrant:
    """A new pair for a valid refresh token; the old pair stops working."""
    async with ctx.db.transaction() as conn:
        return await _refresh(conn, ctx.box, app_key=app_key, app_secret=app_secret,
                              refresh_token=refresh_token, clock=ctx.clock)


async def _refresh(conn: Connection, box: SecretBox, *, app_key: str, app_secret: str,
                   refresh_token: str, clock: Clock) -> TokenGrant:
    app = await authenticated_app(conn, box, app_key, app_secret)
    repo = IsvRepository(conn)
    now = clock()
    refresh = await repo.get_token(token_hash(require(refresh_token, "refresh_token")),
                                   "refresh", lock=True)
    invalid = Unauthenticated("refresh token is invalid, revoked or expired",
                              reason="REFRESH_TOKEN_INVALID")
    if refresh is None or not refresh.valid(now):
        raise invalid
    authorization = await repo.get_authorization(refresh.authorization_id)
    if authorization is None or not authorization.live_for(app.app_key):
        raise invalid
    await repo.revoke_pair(refresh.pair_id, now)
    return await _issue_pair(repo, app, authorization, now)


async def verify_access_token(ctx: IsvContext, *, app_key: str,
                              access_token: str) -> VerifiedToken:
    """The live authorisation behind an access token of this (active) app."""
    async with ctx.db.connection() as conn:
        return await _verify(conn, app_key=app_key, access_token=access_token,
                             clock=ctx.clock)


async def _verify(conn: Connection, *, app_key: str, access_token: str,
                  clock: Clock) -> VerifiedToken:
    repo = IsvRepository(conn)
    invalid = Unauthenticated("access_token is invalid, revoked or expired",
                              reason="ACCESS_TOKEN_INVALID")
    access = await repo.get_token(token_hash(require(access_token, "access_token")), "access")
    if access is None or not access.valid(clock()):
        raise invalid
    authorization = await repo.get_authorization(access.authorization_id)
    if authorization is None or not authorization.live_for(app_key):
        raise invalid
    app = await app_of(conn, app_key)
    app.require_active()
    return VerifiedToken(authorization, access.expires_at)


async def list_authorizations(ctx: IsvContext, *, brand_id: str, include_revoked: bool,
                              requested_page_size: int, page_token: str) -> AuthorizationsPage:
    """One page of the brand's authorisations, newest first."""
    brand_id = require(brand_id, "brand_id")
    size = page_size(requested_page_size)
    filters = {"brand_id": brand_id, "include_revoked": include_revoked}
    after = decode_time_and_id(page_token, filters=filters)
    async with ctx.db.connection() as conn:
        rows = await IsvRepository(conn).list_authorizations(brand_id, include_revoked,
                                                             size + 1, after)
    page, token = keyset_page(
        rows, size, lambda last: time_and_id(last.granted_at, last.authorization_id),
        filters=filters)
    return AuthorizationsPage(page, token)


async def revoke_authorization(ctx: IsvContext, commit_once: CommitOnce[Authorization, Reply],
                               *, brand_id: str, app_key: str, shop_id: str) -> Reply:
    """The shop's authorisation of the app ends; its codes and tokens stop working."""
    return await commit_once(lambda conn: _revoke(conn, brand_id=brand_id, app_key=app_key,
                                                  shop_id=shop_id, clock=ctx.clock))


async def _revoke(conn: Connection, *, brand_id: str, app_key: str, shop_id: str,
                  clock: Clock) -> Authorization:
    brand_id, shop_id = require(brand_id, "brand_id"), require(shop_id, "shop_id")
    repo = IsvRepository(conn)
    authorization = await repo.live_authorization(valid_app_key(app_key), shop_id)
    if authorization is None or authorization.brand_id != brand_id:
        raise NotFound(f"app {app_key} holds no authorisation for shop {shop_id}",
                       reason="AUTHORIZATION_NOT_FOUND",
                       metadata={"app_key": app_key, "shop_id": shop_id})
    now = clock()
    await repo.revoke_authorization(authorization.authorization_id, now)
    return Authorization(authorization.authorization_id, authorization.app_key,
                         authorization.app_name, authorization.brand_id, authorization.shop_id,
                         authorization.scopes, authorization.granted_by,
                         authorization.granted_at, now)
