"""Outbound calls to the other services membership depends on: identity's phone vault and
encrypted-phone matching (the `IdentityPort` of `services/membership/ports.py`)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from brandclub.identity.v1 import identity_service_pb2 as identity_pb
from brandclub.identity.v1 import identity_service_pb2_grpc as identity_grpc
from libs.grpc_client import open_channel, remote_error
from libs.tls import TlsIdentity
from services.membership.domain.model import PhoneMatchResult

IDENTITY_SERVICE = "brandclub.identity.v1.IdentityService"


class IdentityVault:
    """The identity service's phone vault, over gRPC."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = identity_grpc.IdentityServiceStub(channel)

    async def store_phone(self, request_id: str, account_id: str, phone: str) -> None:
        try:
            await self._stub.StorePhone(identity_pb.StorePhoneRequest(
                request_id=request_id, account_id=account_id, phone=phone))
        except grpc.aio.AioRpcError as error:
            raise remote_error(error) from None

    async def match_phone(self, request_id: str, brand_id: str,
                          account_id: str) -> PhoneMatchResult:
        try:
            reply = await self._stub.MatchPhoneForBrand(identity_pb.MatchPhoneForBrandRequest(
                request_id=request_id, brand_id=brand_id, account_id=account_id))
        except grpc.aio.AioRpcError as error:
            raise remote_error(error) from None
        matched = reply.result == identity_pb.PHONE_MATCH_RESULT_MATCHED
        return PhoneMatchResult(matched, reply.encrypted_phone if matched else "",
                                reply.crm_member_id if matched else "")


@dataclass(frozen=True)
class Upstreams:
    """The other services membership calls, and the channels to close on shutdown."""

    identity: IdentityVault
    channels: dict[str, grpc.aio.Channel]

    @classmethod
    def open(cls, identity_address: str, tls: TlsIdentity) -> Upstreams:
        identity = open_channel(identity_address, service=IDENTITY_SERVICE, tls=tls)
        return cls(IdentityVault(identity), {"identity": identity})
