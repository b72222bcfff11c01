"""The gateway in-process in front of in-process identity and membership services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import grpc
import pytest

from brandclub.identity.v1 import identity_service_pb2 as identity_pb
from brandclub.identity.v1 import identity_service_pb2_grpc as identity_grpc
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from libs.testing import running_service, service_settings
from services.gateway.main import RunningGateway, start_gateway
from services.identity.main import compose as identity_compose
from services.membership.main import compose as membership_compose


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
        identity_channel = grpc.aio.insecure_channel(identity.address)
        membership_channel = grpc.aio.insecure_channel(membership.address)
        async with aiohttp.ClientSession(base_url=gateway.base_url) as http:
            yield Storefront(gateway, http, identity_grpc.IdentityServiceStub(identity_channel),
                             membership_grpc.MembershipServiceStub(membership_channel))
        await identity_channel.close()
        await membership_channel.close()
        await gateway.stop(0.2)
