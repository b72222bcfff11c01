"""The gateway's caches of identity's answers (libs.cache.TtlCache): a verified token or ISV
access grant is reused only while both the cache entry and the token itself are valid, a
refusal is never cached, and concurrent first uses of one token ask identity once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import grpc
import pytest

from brandclub.identity.v1 import identity_service_pb2 as identity_pb
from brandclub.identity.v1 import isv_service_pb2 as isv_pb
from libs.errors import Code, RemoteError
from services.gateway.adapters.auth import TokenVerifier
from services.gateway.adapters.isv import InvalidToken, IsvDirectory
from services.gateway.adapters.upstreams import Upstreams

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def refused() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(grpc.StatusCode.UNAUTHENTICATED, grpc.aio.Metadata(),
                                grpc.aio.Metadata(), details="token is invalid")


@dataclass
class FakeIdentity:
    """Identity as the gateway sees it: answers VerifyToken / VerifyAccessToken with a fixed
    expiry, counting calls; `refuse` makes it refuse."""

    expires_at: datetime
    calls: int = 0
    refuse: bool = False
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.gate.set()

    async def _answer(self) -> None:
        self.calls += 1
        await self.gate.wait()
        if self.refuse:
            raise refused()

    async def VerifyToken(self, request: identity_pb.VerifyTokenRequest
                          ) -> identity_pb.VerifyTokenResponse:
        await self._answer()
        reply = identity_pb.VerifyTokenResponse(kind=identity_pb.PRINCIPAL_KIND_SHOPPER,
                                                account_id=f"acc_{request.token}")
        reply.expire_time.FromDatetime(self.expires_at)
        return reply

    async def VerifyAccessToken(self, request: isv_pb.VerifyAccessTokenRequest
                                ) -> isv_pb.VerifyAccessTokenResponse:
        await self._answer()
        reply = isv_pb.VerifyAccessTokenResponse(authorization_id="auz_1", brand_id="brd_1",
                                                 shop_id="shp_1", scopes=["member.read"])
        reply.expire_time.FromDatetime(self.expires_at)
        return reply


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


def upstreams(fake: FakeIdentity) -> Upstreams:
    holder: Any = type("FakeUpstreams", (), {"identity": fake, "isv": fake})()
    return cast(Upstreams, holder)


async def test_verified_token_is_reused_only_until_the_token_expires() -> None:
    """Within the cache's 30 seconds a token is verified once; once the token itself has
    expired, identity is asked again (and its refusal stands)."""
    fake, clock = FakeIdentity(START + timedelta(seconds=10)), Clock()
    verifier = TokenVerifier(upstreams(fake), cache_seconds=30, clock=clock)
    first = await verifier.verify("Bearer t1")
    assert (await verifier.verify("Bearer t1")) == first and fake.calls == 1
    clock.now = START + timedelta(seconds=10)
    fake.refuse = True
    with pytest.raises(RemoteError) as error:
        await verifier.verify("Bearer t1")
    assert error.value.code is Code.UNAUTHENTICATED and fake.calls == 2


async def test_refusals_are_not_cached() -> None:
    """A token identity refused is asked about again next time."""
    fake = FakeIdentity(START + timedelta(hours=1), refuse=True)
    verifier = TokenVerifier(upstreams(fake), clock=Clock())
    for _ in range(2):
        with pytest.raises(RemoteError):
            await verifier.verify("Bearer bad")
    assert fake.calls == 2


async def test_concurrent_first_uses_of_a_token_ask_identity_once() -> None:
    """Twenty requests arriving together with one new token cost one verification."""
    fake = FakeIdentity(START + timedelta(hours=1))
    fake.gate.clear()
    verifier = TokenVerifier(upstreams(fake), clock=Clock())
    waiting = [asyncio.create_task(verifier.verify("Bearer t2")) for _ in range(20)]
    await asyncio.sleep(0)
    fake.gate.set()
    principals = await asyncio.gather(*waiting)
    assert fake.calls == 1 and {p.account_id for p in principals} == {"acc_t2"}


async def test_isv_grant_is_reused_only_until_the_access_token_expires() -> None:
    """An access token's grant is cached for the configured seconds but never past the
    token's own expiry; an invalid token is reported, not cached."""
    fake, clock = FakeIdentity(START + timedelta(seconds=3)), Clock()
    directory = IsvDirectory(upstreams(fake), app_cache_seconds=30, token_cache_seconds=30,
                             clock=clock)
    grant = await directory.grant("AK", "at1")
    assert await directory.grant("AK", "at1") == grant and fake.calls == 1
    clock.now = START + timedelta(seconds=3)
    fake.refuse = True
    for _ in range(2):
        with pytest.raises(InvalidToken):
            await directory.grant("AK", "at1")
    assert fake.calls == 3


async def test_zero_seconds_means_no_isv_cache() -> None:
    """With token_cache_seconds=0 every use asks identity (a revocation applies at once)."""
    fake = FakeIdentity(START + timedelta(hours=1))
    directory = IsvDirectory(upstreams(fake), app_cache_seconds=0, token_cache_seconds=0,
                             clock=Clock())
    for _ in range(3):
        await directory.grant("AK", "at1")
    assert fake.calls == 3
