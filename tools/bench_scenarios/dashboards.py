"""The brand console's member overview (DashboardService.GetMemberOverview) over a brand of
`--members` members: the default keeps the quick bench quick; `--members 1000000` gives the
figure at a million members."""

from __future__ import annotations

from brandclub.membership.v1 import dashboard_service_pb2 as pb
from brandclub.membership.v1 import dashboard_service_pb2_grpc as pb_grpc
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from tools.bench_core import BenchContext, Result
from tools.bench_scenarios.segments import seed_members


def _size(members: int) -> str:
    return f"{members // 1_000_000}M" if members % 1_000_000 == 0 else f"{members}"


async def scenarios(ctx: BenchContext) -> list[Result]:
    database_url = ctx.stack.database_url
    assert database_url is not None
    members = max(1, ctx.options.members)
    async with ctx.stack.channel("membership") as channel:
        membership = membership_grpc.MembershipServiceStub(channel)
        dashboards = pb_grpc.DashboardServiceStub(channel)
        brand = (await membership.CreateBrand(membership_pb.CreateBrandRequest(
            request_id=f"bench:dashboards:brand:{members}",
            display_name=f"Dashboard bench {members}",
            mode=membership_pb.PROGRAM_MODE_NON_CONNECTED, time_zone="Asia/Shanghai"),
            timeout=10)).brand
        await seed_members(database_url, brand.brand_id, members, prefix=f"dash{members}")
        request = pb.GetMemberOverviewRequest(brand_id=brand.brand_id)
        overview = (await dashboards.GetMemberOverview(request, timeout=60)).overview
        if overview.card_total + overview.lv0_valid + overview.lv0_dormant == 0:
            raise RuntimeError(f"overview of {members} seeded members counts nobody")

        async def read_overview(_: int) -> None:
            await dashboards.GetMemberOverview(request, timeout=60)

        return await ctx.measure(f"dashboards/member-overview-{_size(members)}", read_overview,
                                 4)
