"""gRPC DashboardService: protobuf <-> dashboard use cases."""

from __future__ import annotations

import grpc

from brandclub.membership.v1 import dashboard_service_pb2 as pb
from brandclub.membership.v1 import dashboard_service_pb2_grpc as pb_grpc
from services.membership.dashboards import usecases
from services.membership.dashboards.domain.metrics import average, basis_points
from services.membership.usecases.context import Context


class DashboardServicer(pb_grpc.DashboardServiceServicer):
    """Each RPC: the request translated, one use-case coroutine awaited, its result
    translated."""

    def __init__(self, context: Context) -> None:
        self._context = context

    async def GetMemberOverview(self, request: pb.GetMemberOverviewRequest,
                                context: grpc.aio.ServicerContext
                                ) -> pb.GetMemberOverviewResponse:
        o = await usecases.overview(self._context, request.brand_id)
        return pb.GetMemberOverviewResponse(overview=pb.MemberOverview(
            brand_id=request.brand_id, lv0_valid=o.lv0_valid, lv0_dormant=o.lv0_dormant,
            card_valid=o.card_valid, card_dormant=o.card_dormant, card_total=o.card_total,
            card_valid_by_level=o.card_valid_by_level))

    async def GetDailyDashboard(self, request: pb.GetDailyDashboardRequest,
                                context: grpc.aio.ServicerContext
                                ) -> pb.GetDailyDashboardResponse:
        d = await usecases.daily(self._context, request.brand_id, request.start_date,
                                 request.end_date)
        s = d.summary
        return pb.GetDailyDashboardResponse(
            time_zone=d.time_zone,
            days=[pb.DailyMetrics(
                date=m.day.isoformat(), new_members=m.new_members,
                new_members_by_source=m.new_members_by_source,
                new_card_members=m.new_card_members, lv0_members=m.lv0_members,
                card_members=m.card_members, buyers=m.buyers, new_buyers=m.new_buyers,
                returning_buyers=m.returning_buyers, member_orders=m.member_orders,
                member_order_cents=m.member_order_cents,
                non_member_orders=m.non_member_orders,
                non_member_order_cents=m.non_member_order_cents, lv0_valid=m.lv0_valid,
                lv0_dormant=m.lv0_dormant, card_valid=m.card_valid,
                card_dormant=m.card_dormant) for m in d.days],
            summary=pb.RangeSummary(
                member_buyers=s.member_buyers, member_repeat_buyers=s.member_repeat_buyers,
                non_member_buyers=s.non_member_buyers,
                non_member_repeat_buyers=s.non_member_repeat_buyers,
                member_repurchase_rate_basis_points=basis_points(s.member_repeat_buyers,
                                                                 s.member_buyers),
                non_member_repurchase_rate_basis_points=basis_points(
                    s.non_member_repeat_buyers, s.non_member_buyers),
                member_average_order_cents=average(s.member_order_cents, s.member_orders),
                non_member_average_order_cents=average(s.non_member_order_cents,
                                                       s.non_member_orders)))

    async def RefreshDashboard(self, request: pb.RefreshDashboardRequest,
                               context: grpc.aio.ServicerContext
                               ) -> pb.RefreshDashboardResponse:
        return await usecases.refresh(
            self._context, request.brand_id, request.start_date, request.end_date,
            self._context.once("RefreshDashboard", request, pb.RefreshDashboardResponse,
                               lambda count: pb.RefreshDashboardResponse(
                                   refreshed_days=count)))
