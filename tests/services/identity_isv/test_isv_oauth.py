"""The open platform's apps and OAuth 2.0 authorisation-code flow over gRPC."""

from __future__ import annotations

import asyncpg
import grpc
import pytest

from brandclub.identity.v1 import isv_service_pb2 as pb
from brandclub.identity.v1 import isv_service_pb2_grpc as isv_grpc
from tests.services.identity_isv.isv_helpers import REDIRECT, new_app, reason


async def grant(isv: isv_grpc.IsvServiceStub, app: pb.CreateAppResponse,
                shop_id: str = "shp_1", brand_id: str = "brd_1") -> pb.TokenGrant:
    code = await isv.AuthorizeApp(pb.AuthorizeAppRequest(
        app_key=app.app.app_key, brand_id=brand_id, shop_id=shop_id, redirect_uri=REDIRECT,
        granted_by="mu_1"))
    return (await isv.ExchangeCode(pb.ExchangeCodeRequest(
        app_key=app.app.app_key, app_secret=app.app_secret, code=code.code))).grant


async def test_create_app_is_idempotent_and_secret_is_not_stored_in_plaintext(
        isv: isv_grpc.IsvServiceStub, db_url: str) -> None:
    """A repeated CreateApp returns the same key and secret; the database never holds the
    secret in plaintext, and the signing-key read returns it decrypted."""
    first = await new_app(isv)
    again = await new_app(isv)
    assert (again.app.app_key, again.app_secret) == (first.app.app_key, first.app_secret)
    conn = await asyncpg.connect(db_url)
    try:
        dump = await conn.fetchval("SELECT string_agg(t::text, '|') FROM identity.isv_apps t")
        keys = await conn.fetchval(
            "SELECT count(*) FROM identity.idempotency_keys WHERE method = 'CreateApp'")
    finally:
        await conn.close()
    assert first.app_secret not in dump
    assert keys == 0
    signing = await isv.GetAppSigningKey(pb.GetAppSigningKeyRequest(app_key=first.app.app_key))
    assert signing.app_secret == first.app_secret


async def test_create_app_refuses_unknown_scope(isv: isv_grpc.IsvServiceStub) -> None:
    """An app cannot be registered with a scope outside the catalogue."""
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await new_app(isv, scopes=("member.read", "everything"))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(error.value) == "UNKNOWN_SCOPE"


async def test_code_exchange_gives_24h_token_to_test_apps_and_long_to_production(
        isv: isv_grpc.IsvServiceStub) -> None:
    """Apps in test get 24-hour access tokens; production apps get year-long ones."""
    test_app = await new_app(isv)
    live_app = await new_app(isv, status=pb.APP_STATUS_PRODUCTION, request_id="app-2")
    assert (await grant(isv, test_app)).expires_in_seconds == 24 * 3600
    live = await grant(isv, live_app)
    assert live.expires_in_seconds == 365 * 24 * 3600
    assert (live.shop_id, live.brand_id) == ("shp_1", "brd_1")
    assert sorted(live.scopes) == ["member.read", "points.read"]


async def test_code_is_single_use_and_needs_the_right_secret(
        isv: isv_grpc.IsvServiceStub) -> None:
    """A code works once, and only with the app's own secret."""
    app = await new_app(isv)
    code = (await isv.AuthorizeApp(pb.AuthorizeAppRequest(
        app_key=app.app.app_key, brand_id="brd_1", shop_id="shp_1", granted_by="mu_1"))).code
    with pytest.raises(grpc.aio.AioRpcError) as wrong:
        await isv.ExchangeCode(pb.ExchangeCodeRequest(app_key=app.app.app_key,
                                                      app_secret="nope", code=code))
    assert reason(wrong.value) == "APP_CREDENTIALS_INVALID"
    await isv.ExchangeCode(pb.ExchangeCodeRequest(app_key=app.app.app_key,
                                                  app_secret=app.app_secret, code=code))
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await isv.ExchangeCode(pb.ExchangeCodeRequest(app_key=app.app.app_key,
                                                      app_secret=app.app_secret, code=code))
    assert reason(reused.value) == "AUTHORIZATION_CODE_INVALID"


async def test_refresh_voids_the_old_pair(isv: isv_grpc.IsvServiceStub) -> None:
    """After a refresh the new access token verifies and the old pair no longer works."""
    app = await new_app(isv)
    first = await grant(isv, app)
    second = (await isv.RefreshAccessToken(pb.RefreshAccessTokenRequest(
        app_key=app.app.app_key, app_secret=app.app_secret,
        refresh_token=first.refresh_token))).grant
    verified = await isv.VerifyAccessToken(pb.VerifyAccessTokenRequest(
        app_key=app.app.app_key, access_token=second.access_token))
    assert verified.shop_id == "shp_1"
    with pytest.raises(grpc.aio.AioRpcError) as old:
        await isv.VerifyAccessToken(pb.VerifyAccessTokenRequest(
            app_key=app.app.app_key, access_token=first.access_token))
    assert reason(old.value) == "ACCESS_TOKEN_INVALID"
    with pytest.raises(grpc.aio.AioRpcError) as old_refresh:
        await isv.RefreshAccessToken(pb.RefreshAccessTokenRequest(
            app_key=app.app.app_key, app_secret=app.app_secret,
            refresh_token=first.refresh_token))
    assert reason(old_refresh.value) == "REFRESH_TOKEN_INVALID"


async def test_token_verifies_only_for_its_own_app(isv: isv_grpc.IsvServiceStub) -> None:
    """Another app presenting a shop's token for this app is refused."""
    app = await new_app(isv)
    other = await new_app(isv, request_id="app-2")
    tokens = await grant(isv, app)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await isv.VerifyAccessToken(pb.VerifyAccessTokenRequest(
            app_key=other.app.app_key, access_token=tokens.access_token))
    assert reason(error.value) == "ACCESS_TOKEN_INVALID"


async def test_revocation_voids_tokens_and_lists_as_revoked(
        isv: isv_grpc.IsvServiceStub) -> None:
    """Revoking an authorisation voids its tokens at once; the list shows it only when revoked
    ones are asked for; another brand cannot revoke it."""
    app = await new_app(isv)
    tokens = await grant(isv, app)
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await isv.RevokeAuthorization(pb.RevokeAuthorizationRequest(
            request_id="r0", brand_id="brd_other", app_key=app.app.app_key, shop_id="shp_1"))
    assert reason(foreign.value) == "AUTHORIZATION_NOT_FOUND"
    listed = await isv.ListAuthorizations(pb.ListAuthorizationsRequest(brand_id="brd_1"))
    assert [a.shop_id for a in listed.authorizations] == ["shp_1"]
    await isv.RevokeAuthorization(pb.RevokeAuthorizationRequest(
        request_id="r1", brand_id="brd_1", app_key=app.app.app_key, shop_id="shp_1"))
    with pytest.raises(grpc.aio.AioRpcError):
        await isv.VerifyAccessToken(pb.VerifyAccessTokenRequest(
            app_key=app.app.app_key, access_token=tokens.access_token))
    assert not (await isv.ListAuthorizations(
        pb.ListAuthorizationsRequest(brand_id="brd_1"))).authorizations
    revoked = await isv.ListAuthorizations(pb.ListAuthorizationsRequest(
        brand_id="brd_1", include_revoked=True))
    assert revoked.authorizations[0].HasField("revoke_time")


async def test_authorizations_page(isv: isv_grpc.IsvServiceStub) -> None:
    """Listing pages through every authorisation of the brand exactly once."""
    app = await new_app(isv)
    for index in range(5):
        await grant(isv, app, shop_id=f"shp_{index}")
    seen: list[str] = []
    token = ""
    while True:
        page = await isv.ListAuthorizations(pb.ListAuthorizationsRequest(
            brand_id="brd_1", page_size=2, page_token=token))
        seen += [a.shop_id for a in page.authorizations]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == [f"shp_{i}" for i in range(5)]


async def test_suspended_app_tokens_stop_working(isv: isv_grpc.IsvServiceStub) -> None:
    """Suspending an app makes its tokens fail verification."""
    app = await new_app(isv)
    tokens = await grant(isv, app)
    await isv.SetAppStatus(pb.SetAppStatusRequest(request_id="s1", app_key=app.app.app_key,
                                                  status=pb.APP_STATUS_SUSPENDED))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await isv.VerifyAccessToken(pb.VerifyAccessTokenRequest(
            app_key=app.app.app_key, access_token=tokens.access_token))
    assert reason(error.value) == "APP_SUSPENDED"
