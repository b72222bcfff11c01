"""The open platform's view of apps and access tokens, through identity's IsvService, with
short in-process caches (the signing key is needed on every call)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import grpc

from brandclub.identity.v1 import isv_service_pb2 as isv_pb
from libs.cache import TtlCache
from libs.clock import Clock, system_clock
from libs.grpc_client import remote_error
from libs.protoconv import from_timestamp
from services.gateway.adapters.upstreams import Upstreams

V = TypeVar("V")


@dataclass(frozen=True)
class SigningApp:
    app_key: str
    secret: str
    suspended: bool
    scopes: tuple[str, ...]
    calls_per_minute: int
    calls_per_day: int

    def __repr__(self) -> str:  # the secret never reaches a log line
        return f"SigningApp(app_key={self.app_key!r})"


@dataclass(frozen=True)
class ShopGrant:
    authorization_id: str
    brand_id: str
    shop_id: str
    scopes: frozenset[str]
    expires_at: datetime


def _cache(seconds: float) -> TtlCache[str, V] | None:
    """A cache kept `seconds`, or none at all for 0 (tests that revoke and expect it at once)."""
    return TtlCache(seconds, max_entries=20_000) if seconds > 0 else None


async def _cached(cache: TtlCache[str, V] | None, key: str,
                  load: Callable[[], Awaitable[V]]) -> V:
    return await load() if cache is None else await cache.get_or_load(key, load)


class UnknownApp(Exception):
    pass


class InvalidToken(Exception):
    pass


class IsvDirectory:
    def __init__(self, upstreams: Upstreams, *, app_cache_seconds: float,
                 token_cache_seconds: float, clock: Clock = system_clock) -> None:
        self._upstreams = upstreams
        self._apps: TtlCache[str, SigningApp] | None = _cache(app_cache_seconds)
        self._tokens: TtlCache[str, ShopGrant] | None = _cache(token_cache_seconds)
        self._clock = clock

    async def app(self, app_key: str) -> SigningApp:
        return await _cached(self._apps, app_key, lambda: self._signing_app(app_key))

    async def grant(self, app_key: str, access_token: str) -> ShopGrant:
        """The shop grant of a valid access token; a cached one is never used past the
        token's expiry."""
        key = f"{app_key}:{access_token}"
        if self._tokens is not None:
            cached = self._tokens.get(key)
            if cached is not None and cached.expires_at <= self._clock():
                self._tokens.forget(key)
        return await _cached(self._tokens, key, lambda: self._verify(app_key, access_token))

    async def _signing_app(self, app_key: str) -> SigningApp:
        try:
            reply = await self._upstreams.isv.GetAppSigningKey(
                isv_pb.GetAppSigningKeyRequest(app_key=app_key))
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                raise UnknownApp(app_key) from None
            raise remote_error(error) from None
        return SigningApp(reply.app.app_key, reply.app_secret,
                          reply.app.status == isv_pb.APP_STATUS_SUSPENDED,
                          tuple(reply.app.scopes), reply.app.calls_per_minute,
                          reply.app.calls_per_day)

    async def _verify(self, app_key: str, access_token: str) -> ShopGrant:
        try:
            reply = await self._upstreams.isv.VerifyAccessToken(
                isv_pb.VerifyAccessTokenRequest(app_key=app_key, access_token=access_token))
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT,
                                grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND):
                raise InvalidToken(remote_error(error).reason) from None
            raise remote_error(error) from None
        return ShopGrant(reply.authorization_id, reply.brand_id, reply.shop_id,
                         frozenset(reply.scopes), from_timestamp(reply.expire_time))
