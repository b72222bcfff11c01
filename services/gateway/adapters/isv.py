"""The open platform's view of apps and access tokens, through identity's IsvService, with
short in-process caches (the signing key is needed on every call)."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

import grpc

from brandclub.identity.v1 import isv_service_pb2 as isv_pb
from libs.grpc_client import remote_error
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


class TtlCache(Generic[V]):
    def __init__(self, seconds: float, max_entries: int = 20_000) -> None:
        self._seconds = seconds
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()

    def get(self, key: str) -> V | None:
        if self._seconds <= 0:
            return None
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: str, value: V) -> None:
        if self._seconds <= 0:
            return
        self._entries[key] = (time.monotonic() + self._seconds, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


class UnknownApp(Exception):
    pass


class InvalidToken(Exception):
    pass


class IsvDirectory:
    def __init__(self, upstreams: Upstreams, *, app_cache_seconds: float,
                 token_cache_seconds: float) -> None:
        self._upstreams = upstreams
        self._apps: TtlCache[SigningApp] = TtlCache(app_cache_seconds)
        self._tokens: TtlCache[ShopGrant] = TtlCache(token_cache_seconds)

    async def app(self, app_key: str) -> SigningApp:
        cached = self._apps.get(app_key)
        if cached is not None:
            return cached
        try:
            reply = await self._upstreams.isv.GetAppSigningKey(
                isv_pb.GetAppSigningKeyRequest(app_key=app_key))
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                raise UnknownApp(app_key) from None
            raise remote_error(error) from None
        app = SigningApp(reply.app.app_key, reply.app_secret,
                         reply.app.status == isv_pb.APP_STATUS_SUSPENDED,
                         tuple(reply.app.scopes), reply.app.calls_per_minute,
                         reply.app.calls_per_day)
        self._apps.put(app_key, app)
        return app

    async def grant(self, app_key: str, access_token: str) -> ShopGrant:
        key = f"{app_key}:{access_token}"
        cached = self._tokens.get(key)
        if cached is not None:
            return cached
        try:
            reply = await self._upstreams.isv.VerifyAccessToken(
                isv_pb.VerifyAccessTokenRequest(app_key=app_key, access_token=access_token))
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT,
                                grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND):
                raise InvalidToken(remote_error(error).reason) from None
            raise remote_error(error) from None
        grant = ShopGrant(reply.authorization_id, reply.brand_id, reply.shop_id,
                          frozenset(reply.scopes))
        self._tokens.put(key, grant)
        return grant
