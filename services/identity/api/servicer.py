"""gRPC servicer for identity: protobuf <-> use cases."""

from __future__ import annotations

import grpc

from brandclub.identity.v1 import identity_service_pb2 as pb
from brandclub.identity.v1 import identity_service_pb2_grpc as pb_grpc
from libs.db import Connection, Database
from libs.idempotency import IdempotentExecutor
from libs.protoconv import timestamp
from services.identity import usecases
from services.identity.domain.accounts import Account
from services.identity.domain.tokens import Kind, TokenCodec

_KINDS = {Kind.SHOPPER: pb.PRINCIPAL_KIND_SHOPPER, Kind.MERCHANT: pb.PRINCIPAL_KIND_MERCHANT}


def account_pb(account: Account) -> pb.Account:
    return pb.Account(account_id=account.account_id,
                      marketplace_account_id=account.marketplace_account_id,
                      create_time=timestamp(account.created_at))


class IdentityServicer(pb_grpc.IdentityServiceServicer):
    def __init__(self, db: Database, codec: TokenCodec) -> None:
        self._db = db
        self._codec = codec
        self._idempotent = IdempotentExecutor(db)

    async def EnsureAccount(self, request: pb.EnsureAccountRequest,
                            context: grpc.aio.ServicerContext) -> pb.EnsureAccountResponse:
        async def work(conn: Connection) -> pb.EnsureAccountResponse:
            account, created = await usecases.ensure_account(conn,
                                                             request.marketplace_account_id)
            return pb.EnsureAccountResponse(account=account_pb(account), created=created)

        return await self._idempotent.run("EnsureAccount", request, pb.EnsureAccountResponse,
                                          work)

    async def GetAccount(self, request: pb.GetAccountRequest,
                         context: grpc.aio.ServicerContext) -> pb.GetAccountResponse:
        async with self._db.connection() as conn:
            account = await usecases.get_account(conn, request.account_id)
        return pb.GetAccountResponse(account=account_pb(account))

    async def IssueShopperToken(self, request: pb.IssueShopperTokenRequest,
                                context: grpc.aio.ServicerContext
                                ) -> pb.IssueShopperTokenResponse:
        async with self._db.connection() as conn:
            token, claims = await usecases.issue_shopper_token(conn, self._codec,
                                                               request.account_id,
                                                               request.ttl_seconds)
        return pb.IssueShopperTokenResponse(token=token, expire_time=timestamp(claims.expires_at))

    async def VerifyToken(self, request: pb.VerifyTokenRequest,
                          context: grpc.aio.ServicerContext) -> pb.VerifyTokenResponse:
        claims = usecases.verify_token(self._codec, request.token)
        shopper = claims.kind is Kind.SHOPPER
        return pb.VerifyTokenResponse(
            kind=_KINDS[claims.kind],
            account_id=claims.subject if shopper else "",
            brand_id=claims.brand_id,
            expire_time=timestamp(claims.expires_at),
        )
