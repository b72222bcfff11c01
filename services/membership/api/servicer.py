"""gRPC servicer: maps protobuf to use-case calls and back, nothing else."""

from __future__ import annotations

import grpc

from brandclub.membership.v1 import membership_service_pb2 as pb
from brandclub.membership.v1 import membership_service_pb2_grpc as pb_grpc
from libs.db import Connection, Database
from libs.errors import InvalidArgument
from libs.idempotency import IdempotentExecutor
from libs.protoconv import timestamp
from services.membership import usecases
from services.membership.domain.model import Brand, MemberCard, MemberStatus, ProgramMode, Shop

_MODES = {pb.PROGRAM_MODE_CONNECTED: ProgramMode.CONNECTED,
          pb.PROGRAM_MODE_NON_CONNECTED: ProgramMode.NON_CONNECTED}
_STATUSES = {MemberStatus.LV0: pb.MEMBER_STATUS_LV0,
             MemberStatus.CARD_MEMBER: pb.MEMBER_STATUS_CARD_MEMBER,
             MemberStatus.ENDED: pb.MEMBER_STATUS_ENDED}


def brand_pb(brand: Brand) -> pb.Brand:
    mode = next(k for k, v in _MODES.items() if v is brand.mode)
    return pb.Brand(brand_id=brand.brand_id, display_name=brand.display_name, mode=mode,
                    time_zone=brand.time_zone, create_time=timestamp(brand.created_at))


def shop_pb(shop: Shop) -> pb.Shop:
    return pb.Shop(shop_id=shop.shop_id, brand_id=shop.brand_id,
                   display_name=shop.display_name, create_time=timestamp(shop.created_at))


def card_pb(card: MemberCard) -> pb.MemberCard:
    member = card.member
    return pb.MemberCard(
        brand_id=card.brand.brand_id,
        brand_display_name=card.brand.display_name,
        account_id=member.account_id,
        status=_STATUSES[member.status],
        level=member.level,
        member_since=timestamp(member.member_since),
        lv0_notice_pending=member.lv0_notice_pending,
        followed_shop_ids=card.followed_shop_ids,
    )


class MembershipServicer(pb_grpc.MembershipServiceServicer):
    def __init__(self, db: Database) -> None:
        self._db = db
        self._idempotent = IdempotentExecutor(db)

    async def CreateBrand(self, request: pb.CreateBrandRequest,
                          context: grpc.aio.ServicerContext) -> pb.CreateBrandResponse:
        if request.mode not in _MODES:
            raise InvalidArgument("mode must be CONNECTED or NON_CONNECTED", field="mode")
        mode = _MODES[request.mode]

        async def work(conn: Connection) -> pb.CreateBrandResponse:
            brand = await usecases.create_brand(conn, request.display_name, mode,
                                                request.time_zone)
            return pb.CreateBrandResponse(brand=brand_pb(brand))

        return await self._idempotent.run("CreateBrand", request, pb.CreateBrandResponse, work)

    async def GetBrand(self, request: pb.GetBrandRequest,
                       context: grpc.aio.ServicerContext) -> pb.GetBrandResponse:
        async with self._db.connection() as conn:
            return pb.GetBrandResponse(
                brand=brand_pb(await usecases.get_brand(conn, request.brand_id)))

    async def CreateShop(self, request: pb.CreateShopRequest,
                         context: grpc.aio.ServicerContext) -> pb.CreateShopResponse:
        async def work(conn: Connection) -> pb.CreateShopResponse:
            shop = await usecases.create_shop(conn, request.brand_id, request.display_name)
            return pb.CreateShopResponse(shop=shop_pb(shop))

        return await self._idempotent.run("CreateShop", request, pb.CreateShopResponse, work)

    async def GetShop(self, request: pb.GetShopRequest,
                      context: grpc.aio.ServicerContext) -> pb.GetShopResponse:
        async with self._db.connection() as conn:
            return pb.GetShopResponse(shop=shop_pb(await usecases.get_shop(conn, request.shop_id)))

    async def FollowShop(self, request: pb.FollowShopRequest,
                         context: grpc.aio.ServicerContext) -> pb.FollowShopResponse:
        async def work(conn: Connection) -> pb.FollowShopResponse:
            result = await usecases.follow_shop(conn, request.shop_id, request.account_id,
                                                request.channel)
            return pb.FollowShopResponse(card=card_pb(result.card),
                                         became_member=result.became_member)

        return await self._idempotent.run("FollowShop", request, pb.FollowShopResponse, work)

    async def UnfollowShop(self, request: pb.UnfollowShopRequest,
                           context: grpc.aio.ServicerContext) -> pb.UnfollowShopResponse:
        async def work(conn: Connection) -> pb.UnfollowShopResponse:
            card = await usecases.unfollow_shop(conn, request.shop_id, request.account_id)
            return pb.UnfollowShopResponse(card=card_pb(card))

        return await self._idempotent.run("UnfollowShop", request, pb.UnfollowShopResponse,
                                          work)

    async def GetMemberCard(self, request: pb.GetMemberCardRequest,
                            context: grpc.aio.ServicerContext) -> pb.GetMemberCardResponse:
        async with self._db.connection() as conn:
            card = await usecases.get_member_card(conn, request.brand_id, request.account_id)
        return pb.GetMemberCardResponse(card=card_pb(card))
