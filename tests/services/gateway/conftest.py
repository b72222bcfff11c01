"""The gateway in-process in front of in-process identity and membership services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import pytest

from brandclub.benefits.v1 import benefits_service_pb2_grpc as benefits_grpc
from brandclub.identity.v1 import identity_service_pb2 as identity_pb
from brandclub.identity.v1 import identity_service_pb2_grpc as identity_grpc
from brandclub.identity.v1 import isv_service_pb2 as isv_pb
from brandclub.identity.v1 import isv_service_pb2_grpc as isv_grpc
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from libs.testing import contract_channel, running_service, service_settings
from services.benefits.main import compose as benefits_compose
from services.engagement.main import make_compose as engagement_make_compose
from services.gateway.main import GatewayOptions, RunningGateway, start_gateway
from services.identity.main import compose as identity_compose
from services.membership.main import compose as membership_compose
from services.messaging.main import compose as messaging_compose


@dataclass
class Storefront:
    gateway: RunningGateway
    http: aiohttp.ClientSession
    identity: identity_grpc.IdentityServiceStub
    membership: membership_grpc.MembershipServiceStub

    async def shopper_token(self, marketplace_id: str) -> tuple[str, str]:
        account = (await self.identity.EnsureAccount(identity_pb.EnsureAccountRequest(
            request_id=f"t:{marketplace_id}", marketplace_account_id=marketplace_id))).account
        token = (await self.identity.IssueShopperToken(identity_pb.IssueShopperTokenRequest(
            account_id=account.account_id))).token
        return account.account_id, token

    async def brand_and_shop(self, name: str = "Acme") -> tuple[str, str]:
        brand = (await self.membership.CreateBrand(membership_pb.CreateBrandRequest(
            request_id=f"t:brand:{name}", display_name=name,
            mode=membership_pb.PROGRAM_MODE_NON_CONNECTED))).brand
        shop = (await self.membership.CreateShop(membership_pb.CreateShopRequest(
            request_id=f"t:shop:{name}", brand_id=brand.brand_id,
            display_name=f"{name} store"))).shop
        return brand.brand_id, shop.shop_id


@pytest.fixture
async def storefront(db_url: str, redis_url: str) -> AsyncIterator[Storefront]:
    async with running_service(service_settings("identity", db_url, redis_url),
                               identity_compose) as identity, \
            running_service(service_settings("membership", db_url, redis_url),
                            membership_compose) as membership:
        settings = service_settings("gateway", db_url, redis_url,
                                    IDENTITY_ADDR=identity.address,
                                    MEMBERSHIP_ADDR=membership.address)
        gateway = await start_gateway(settings, http_port=0, grpc_port=0, bind="127.0.0.1")
        identity_channel = contract_channel(identity)
        membership_channel = contract_channel(membership)
        async with aiohttp.ClientSession(base_url=gateway.base_url) as http:
            yield Storefront(gateway, http, identity_grpc.IdentityServiceStub(identity_channel),
                             membership_grpc.MembershipServiceStub(membership_channel))
        await identity_channel.close()
        await membership_channel.close()
        await gateway.stop(0.2)


# --- the whole gateway: storefront, console and open platform --------------------------------

REDIRECT_URI = "https://isv.example/callback"


@dataclass
class Suite:
    gateway: RunningGateway
    http: aiohttp.ClientSession
    identity: identity_grpc.IdentityServiceStub
    isv: isv_grpc.IsvServiceStub
    membership: membership_grpc.MembershipServiceStub
    benefits: benefits_grpc.BenefitsServiceStub
    benefits_admin: benefits_grpc.BenefitsAdminServiceStub
    # IDENTITY_ADDR, ...: to call a service as the caller that makes that call in production.
    addresses: dict[str, str] = field(default_factory=dict)

    async def shopper(self, marketplace_id: str) -> tuple[str, str]:
        account = (await self.identity.EnsureAccount(identity_pb.EnsureAccountRequest(
            request_id=f"t:{marketplace_id}", marketplace_account_id=marketplace_id))).account
        token = (await self.identity.IssueShopperToken(identity_pb.IssueShopperTokenRequest(
            account_id=account.account_id))).token
        return account.account_id, token

    async def brand_and_shop(self, name: str = "Acme") -> tuple[str, str]:
        """A brand with a configured program (terms "2024-06") and one shop."""
        brand = (await self.membership.CreateBrand(membership_pb.CreateBrandRequest(
            request_id=f"t:brand:{name}", display_name=name,
            mode=membership_pb.PROGRAM_MODE_NON_CONNECTED))).brand
        await self.membership.UpdateProgram(membership_pb.UpdateProgramRequest(
            request_id=f"t:program:{name}", brand_id=brand.brand_id, terms_version="2024-06",
            consent_purposes=["profile"], tiers=[membership_pb.Tier(
                level=1, name="Silver", growth_threshold_cents=0,
                points_multiplier_percent=100)],
            growth_window_days=365, retention_days=30, dormant_after_days=90))
        shop = (await self.membership.CreateShop(membership_pb.CreateShopRequest(
            request_id=f"t:shop:{name}", brand_id=brand.brand_id,
            display_name=f"{name} store"))).shop
        return brand.brand_id, shop.shop_id

    async def merchant_token(self, brand_id: str, login: str = "operator") -> str:
        """A merchant user of the brand and a token for it, from identity."""
        user = (await self.identity.CreateMerchantUser(identity_pb.CreateMerchantUserRequest(
            request_id=f"t:mu:{brand_id}:{login}", brand_id=brand_id,
            login_name=f"{login}-{brand_id[-8:]}", display_name=login))).user
        return (await self.identity.IssueMerchantToken(identity_pb.IssueMerchantTokenRequest(
            merchant_user_id=user.merchant_user_id))).token

    async def member(self, shop_id: str, marketplace_id: str) -> str:
        account_id, _ = await self.shopper(marketplace_id)
        await self.membership.FollowShop(membership_pb.FollowShopRequest(
            request_id=f"t:follow:{marketplace_id}:{shop_id}", shop_id=shop_id,
            account_id=account_id, channel="test"))
        return account_id

    async def app(self, *, scopes: tuple[str, ...] = (
                      "member.read", "points.read", "points.write", "coupon.read",
                      "coupon.write", "giftpack.read", "giftpack.write"),
                  calls_per_minute: int = 0, name: str = "app-1",
                  status: isv_pb.AppStatus.ValueType = isv_pb.APP_STATUS_TEST
                  ) -> tuple[str, str]:
        reply = await self.isv.CreateApp(isv_pb.CreateAppRequest(
            request_id=f"t:app:{name}", name=name, status=status, scopes=list(scopes),
            redirect_uri=REDIRECT_URI, calls_per_minute=calls_per_minute))
        return reply.app.app_key, reply.app_secret

    async def authorise(self, app_key: str, app_secret: str, brand_id: str, shop_id: str,
                        scopes: tuple[str, ...] = ()) -> dict[str, object]:
        """The OAuth flow over HTTP: the merchant grants, the app exchanges the code."""
        async with self.http.post("/console/v1/isv-authorizations", json={
                "app_key": app_key, "shop_id": shop_id, "scopes": list(scopes)},
                headers={"Authorization": f"Bearer {await self.merchant_token(brand_id)}"}
                ) as response:
            assert response.status == 200, await response.text()
            code = (await response.json())["code"]
        async with self.http.post("/oauth2/access_token", data={
                "app_key": app_key, "app_secret": app_secret,
                "grant_type": "authorization_code", "code": code}) as response:
            assert response.status == 200, await response.text()
            grant: dict[str, object] = await response.json()
        return grant


@asynccontextmanager
async def running_suite(db_url: str, redis_url: str, *, engagement: bool) -> AsyncIterator[Suite]:
    """Identity, membership, benefits (and, when asked, engagement and messaging) in-process,
    wired to each other, with the gateway in front of them."""
    async with AsyncExitStack() as stack:
        identity = await stack.enter_async_context(running_service(
            service_settings("identity", db_url, redis_url), identity_compose))
        membership = await stack.enter_async_context(running_service(
            service_settings("membership", db_url, redis_url, IDENTITY_ADDR=identity.address),
            membership_compose))
        addresses = {"IDENTITY_ADDR": identity.address, "MEMBERSHIP_ADDR": membership.address}
        benefits = await stack.enter_async_context(running_service(
            service_settings("benefits", db_url, redis_url, **addresses), benefits_compose))
        addresses["BENEFITS_ADDR"] = benefits.address
        if engagement:
            engaged = await stack.enter_async_context(running_service(
                service_settings("engagement", db_url, redis_url, **addresses),
                engagement_make_compose()))
            messaging = await stack.enter_async_context(running_service(
                service_settings("messaging", db_url, redis_url, **addresses),
                messaging_compose))
            addresses.update(ENGAGEMENT_ADDR=engaged.address, MESSAGING_ADDR=messaging.address)
        settings = service_settings("gateway", db_url, redis_url, **addresses)
        gateway = await start_gateway(settings, http_port=0, grpc_port=0, bind="127.0.0.1",
                                      options=GatewayOptions(app_cache_seconds=0,
                                                             token_cache_seconds=0))
        channels = [contract_channel(service) for service in (identity, membership, benefits)]
        try:
            async with aiohttp.ClientSession(base_url=gateway.base_url) as http:
                yield Suite(gateway, http, identity_grpc.IdentityServiceStub(channels[0]),
                            isv_grpc.IsvServiceStub(channels[0]),
                            membership_grpc.MembershipServiceStub(channels[1]),
                            benefits_grpc.BenefitsServiceStub(channels[2]),
                            benefits_grpc.BenefitsAdminServiceStub(channels[2]),
                            addresses=addresses)
        finally:
            for channel in channels:
                await channel.close()
            await gateway.stop(0.2)


@pytest.fixture
async def suite(db_url: str, redis_url: str) -> AsyncIterator[Suite]:
    async with running_suite(db_url, redis_url, engagement=False) as running:
        yield running


@pytest.fixture
async def full_suite(db_url: str, redis_url: str) -> AsyncIterator[Suite]:
    async with running_suite(db_url, redis_url, engagement=True) as running:
        yield running
