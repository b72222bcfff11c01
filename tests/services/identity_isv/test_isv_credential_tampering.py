"""The ISV credentials kept by identity refuse a one-character change at either end.

Part of the signature sweep (tests/services/test_signature_checks.py): the app secret, the
authorization code, the access token and the refresh token, each changed in its first and in
its last character, are refused, and the unchanged credential still works afterwards (a
refused attempt burns nothing).
"""

from __future__ import annotations

from collections.abc import Awaitable

import grpc
import pytest

from brandclub.identity.v1 import isv_service_pb2 as pb
from brandclub.identity.v1 import isv_service_pb2_grpc as isv_grpc
from tests.services.identity_isv.isv_helpers import REDIRECT, new_app, reason
from tests.services.signature_cases import flip

ENDS = (0, -1)


async def refused(call: Awaitable[object]) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    return reason(caught.value)


async def test_app_secret_and_code_changed_at_either_end_are_refused(
        isv: isv_grpc.IsvServiceStub) -> None:
    """ExchangeCode refuses the app secret or the code changed in one end character; the
    untouched pair then still exchanges once."""
    app = await new_app(isv)
    code = (await isv.AuthorizeApp(pb.AuthorizeAppRequest(
        app_key=app.app.app_key, brand_id="brd_1", shop_id="shp_1", redirect_uri=REDIRECT,
        granted_by="mu_1"))).code
    for end in ENDS:
        assert await refused(isv.ExchangeCode(pb.ExchangeCodeRequest(
            app_key=app.app.app_key, app_secret=flip(app.app_secret, end), code=code))) \
            == "APP_CREDENTIALS_INVALID"
        await refused(isv.ExchangeCode(pb.ExchangeCodeRequest(
            app_key=app.app.app_key, app_secret=app.app_secret, code=flip(code, end))))
    grant = (await isv.ExchangeCode(pb.ExchangeCodeRequest(
        app_key=app.app.app_key, app_secret=app.app_secret, code=code))).grant
    assert grant.access_token


async def test_access_and_refresh_tokens_changed_at_either_end_are_refused(
        isv: isv_grpc.IsvServiceStub) -> None:
    """VerifyAccessToken and RefreshAccessToken refuse a token changed in one end character;
    the untouched tokens still verify and refresh."""
    app = await new_app(isv)
    code = (await isv.AuthorizeApp(pb.AuthorizeAppRequest(
        app_key=app.app.app_key, brand_id="brd_1", shop_id="shp_1", redirect_uri=REDIRECT,
        granted_by="mu_1"))).code
    grant = (await isv.ExchangeCode(pb.ExchangeCodeRequest(
        app_key=app.app.app_key, app_secret=app.app_secret, code=code))).grant
    for end in ENDS:
        assert await refused(isv.VerifyAccessToken(pb.VerifyAccessTokenRequest(
            app_key=app.app.app_key, access_token=flip(grant.access_token, end)))) \
            == "ACCESS_TOKEN_INVALID"
        await refused(isv.RefreshAccessToken(pb.RefreshAccessTokenRequest(
            app_key=app.app.app_key, app_secret=app.app_secret,
            refresh_token=flip(grant.refresh_token, end))))
    verified = await isv.VerifyAccessToken(pb.VerifyAccessTokenRequest(
        app_key=app.app.app_key, access_token=grant.access_token))
    assert verified.brand_id == "brd_1"
    refreshed = await isv.RefreshAccessToken(pb.RefreshAccessTokenRequest(
        app_key=app.app.app_key, app_secret=app.app_secret, refresh_token=grant.refresh_token))
    assert refreshed.grant.access_token != grant.access_token
