"""Outbound calls to the identity service: the phone vault and encrypted-phone matching."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from brandclub.identity.v1 import identity_service_pb2 as identity_pb
from brandclub.identity.v1 import identity_service_pb2_grpc as identity_grpc
from libs.grpc_client import open_channel, remote_error
from libs.tls import TlsIdentity

IDENTITY_SERVICE = "brandclub.identity.v1.IdentityService"


@dataclass(frozen=True)
class MatchResult:
    matched: bool
    encrypted_phone: str
    crm_member_id: str


class IdentityClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = identity_grpc.IdentityServiceStub(channel)

    @classmethod
    def open(cls, address: str,
             tls: TlsIdentity) -> tuple[IdentityClient, grpc.aio.Channel]:
        channel = open_channel(address, service=IDENTITY_SERVICE, tls=tls)
        return cls(channel), channel

    async def store_phone(self, request_id: str, account_id: str, phone: str) -> None:
        """Vault the number; a bad number comes back as INVALID_ARGUMENT on field phone."""
        try:
            await self._stub.StorePhone(identity_pb.StorePhoneRequest(
                request_id=request_id, account_id=account_id, phone=phone))
        except grpc.aio.AioRpcError as error:
            raise remote_error(error) from None

    async def match_phone(self, request_id: str, brand_id: str,
                          account_id: str) -> MatchResult:
        try:
            reply = await self._stub.MatchPhoneForBrand(identity_pb.MatchPhoneForBrandRequest(
                request_id=request_id, brand_id=brand_id, account_id=account_id))
        except grpc.aio.AioRpcError as error:
            raise remote_error(error) from None
        matched = reply.result == identity_pb.PHONE_MATCH_RESULT_MATCHED
        return MatchResult(matched, reply.encrypted_phone if matched else "",
                           reply.crm_member_id if matched else "")
