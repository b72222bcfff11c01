"""A shopper account in identity (with a phone number on file when one is given)."""

from __future__ import annotations

from brandclub.identity.v1 import identity_service_pb2 as ipb
from brandclub.identity.v1 import identity_service_pb2_grpc as igrpc
from libs.testing import ContractChannel
from tests.services.messaging.conftest import Env, rid


async def shopper(env: Env, phone: str = "") -> str:
    async with ContractChannel(env.identity_address, peer="identity") as channel:
        identity = igrpc.IdentityServiceStub(channel)
        account = (await identity.EnsureAccount(ipb.EnsureAccountRequest(
            request_id=rid(), marketplace_account_id=f"pin-{rid()[:8]}"))).account
        if phone:
            await identity.StorePhone(ipb.StorePhoneRequest(
                request_id=rid(), account_id=account.account_id, phone=phone))
        return account.account_id
