"""Every brand-scoped rpc of engagement, called as another brand, finds nothing.

Brand A has one live activity of every kind (sign-in, instant lottery, koi lottery, vote,
quiz, invite), and a member who took part in each. Every EngagementService rpc whose request
names a brand and an activity is then sent for brand B with each of A's activities: each must
answer NOT_FOUND and change nothing. The rpcs that name a brand without an activity (lists,
a draw by id) see nothing of A. `test_every_brand_scoped_rpc_is_swept` keeps the sweep
complete as rpcs are added.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor

from brandclub.engagement.v1 import engagement_service_pb2 as pb
from brandclub.membership.v1 import membership_service_pb2 as mpb
from libs import contract
from libs.testing import contract_channel
from tests.services.engagement.harness import Env, rid

SERVICE = "brandclub.engagement.v1.EngagementService"
MEMBER = "acc_tenant_a"
KINDS: dict[str, dict[str, Any]] = {
    "sign_in": {"sign_in": {"rewards": [{"day": 1, "reward": {"points": 5}}],
                            "make_up_allowed": True, "make_up_window_days": 3}},
    "lottery": {"lottery": {"mode": "LOTTERY_MODE_INSTANT", "cost_points": 0, "prizes": [
        {"prize_id": "p1", "name": "Mug", "kind": "PRIZE_KIND_PHYSICAL", "weight": 10,
         "stock": 5},
        {"prize_id": "thanks", "name": "Thanks", "kind": "PRIZE_KIND_THANKS", "weight": 90}]}},
    "koi": {"lottery": {"mode": "LOTTERY_MODE_KOI", "prizes": [
        {"prize_id": "koi", "name": "Koi", "kind": "PRIZE_KIND_POINTS", "weight": 1,
         "stock": 1, "points": 50}]}},
    "vote": {"vote": {"options": [{"option_id": "red", "label": "Red"},
                                  {"option_id": "blue", "label": "Blue"}], "votes_per_day": 2}},
    "quiz": {"quiz": {"max_attempts": 2, "questions": [
        {"question_id": "q1", "text": "1+1?", "options": [{"option_id": "a", "text": "2"},
                                                         {"option_id": "b", "text": "3"}],
         "correct_option_ids": ["a"]}]}},
    "invite": {"invite": {"inviter_reward": {"points": 5}}},
}
# Brand-scoped rpcs without an activity id: the List* ones are swept generically (B's lists
# are empty), these have their own case below.
WITHOUT_ACTIVITY = {"GetDraw", "CreateActivity"}


def methods() -> list[MethodDescriptor]:
    return list(contract.services()[SERVICE].methods)


def fields(method: MethodDescriptor) -> set[str]:
    return {f.name for f in method.input_type.fields}


def test_every_brand_scoped_rpc_is_swept() -> None:
    """Each rpc naming a brand either names an activity (swept generically) or has a case."""
    scoped = {m.name for m in methods() if "brand_id" in fields(m)}
    with_activity = {m.name for m in methods() if {"brand_id", "activity_id"} <= fields(m)}
    others = {name for name in scoped - with_activity if not name.startswith("List")}
    assert others == WITHOUT_ACTIVITY
    assert "ListActivities" in scoped - with_activity
    assert len(with_activity) >= 18


def request_for(method: MethodDescriptor, brand_id: str, activity_id: str,
                spec: pb.ActivitySpec) -> Any:
    """A plausible request for the method: every field a caller would set, for brand B (a
    valid spec too, so that only the brand can be what is refused)."""
    values = {"request_id": rid(), "brand_id": brand_id, "activity_id": activity_id,
              "account_id": MEMBER, "inviter_account_id": MEMBER, "option_id": "red",
              "local_date": "2020-01-01"}
    message: Any = message_factory.GetMessageClass(method.input_type)()
    for name, value in values.items():
        if name in fields(method):
            setattr(message, name, value)
    if "spec" in fields(method):
        message.spec.CopyFrom(spec)
    return message


async def test_another_brand_reaches_none_of_a_brands_activities(env: Env) -> None:
    """Every rpc naming a brand and an activity answers NOT_FOUND for brand B with each of
    brand A's activities; lists and reads by id for B show nothing of A's."""
    brand_b = (await env.membership.CreateBrand(mpb.CreateBrandRequest(
        request_id=rid(), display_name="Other", mode=mpb.PROGRAM_MODE_NON_CONNECTED,
        time_zone="Asia/Shanghai"))).brand.brand_id
    await env.members(MEMBER)
    env.give_points(MEMBER, 1_000)
    activities = {kind: (await env.activity(config, title=kind)).activity_id
                  for kind, config in KINDS.items()}
    await env.engagement.SignIn(pb.SignInRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=activities["sign_in"],
        account_id=MEMBER))
    draw = await env.engagement.DrawLottery(pb.DrawLotteryRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=activities["lottery"],
        account_id=MEMBER))
    await env.engagement.CastVote(pb.CastVoteRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=activities["vote"],
        account_id=MEMBER, option_id="red"))
    before = await env.db.fetch("SELECT * FROM activities ORDER BY activity_id")
    specs = {kind: (await env.engagement.GetActivity(pb.GetActivityRequest(
        brand_id=env.brand_id, activity_id=activity_id, view=pb.ACTIVITY_VIEW_ADMIN))
        ).activity.spec
        for kind, activity_id in activities.items()}

    channel = contract_channel(env.service)
    leaks: list[str] = []
    try:
        for method in methods():
            if not {"brand_id", "activity_id"} <= fields(method):
                continue
            call = channel.unary_unary(
                contract.full_method_name(method),
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=message_factory.GetMessageClass(
                    method.output_type).FromString)
            for kind, activity_id in activities.items():
                try:
                    await call(request_for(method, brand_b, activity_id, specs[kind]),
                               timeout=10)
                    leaks.append(f"{method.name} on A's {kind}: OK")
                except grpc.aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.NOT_FOUND:
                        leaks.append(f"{method.name} on A's {kind}: {error.code().name} "
                                     f"{error.details()}")
    finally:
        await channel.close()
    assert not leaks, "\n".join(leaks)

    channel = contract_channel(env.service)
    try:
        for method in methods():
            if not (method.name.startswith("List") and "brand_id" in fields(method)
                    and "activity_id" not in fields(method)):
                continue
            reply = await channel.unary_unary(
                contract.full_method_name(method),
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=message_factory.GetMessageClass(
                    method.output_type).FromString)(
                request_for(method, brand_b, "", pb.ActivitySpec()), timeout=10)
            shown = [f.name for f, value in reply.ListFields() if f.name != "next_page_token"]
            assert shown == [], f"{method.name} for brand B shows {shown}"
    finally:
        await channel.close()
    try:
        await env.engagement.GetDraw(pb.GetDrawRequest(brand_id=brand_b,
                                                       draw_id=draw.draw.draw_id))
        raise AssertionError("GetDraw answered brand B with brand A's draw")
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND
    created = await env.engagement.CreateActivity(pb.CreateActivityRequest(
        request_id=rid(), brand_id=brand_b, spec=(await env.engagement.GetActivity(
            pb.GetActivityRequest(brand_id=env.brand_id, activity_id=activities["vote"]))
        ).activity.spec, owner=pb.Owner(kind=pb.OWNER_KIND_BRAND)))
    assert created.activity.brand_id == brand_b
    assert await env.db.fetch("SELECT * FROM activities WHERE brand_id = $1 ORDER BY "
                              "activity_id", env.brand_id) == before
    assert descriptor_pool.Default().FindServiceByName(SERVICE) is not None
