"""Activities: life cycle, queries, validation naming the field, what may change while live."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from google.protobuf import json_format

from brandclub.engagement.v1 import engagement_service_pb2 as pb
from libs.grpc_client import remote_error
from libs.protoconv import timestamp
from tests.services.engagement.harness import Env, rid

LOTTERY = {"lottery": {"mode": "LOTTERY_MODE_INSTANT", "cost_points": 10, "prizes": [
    {"prize_id": "p1", "name": "Mug", "kind": "PRIZE_KIND_PHYSICAL", "weight": 10, "stock": 5},
    {"prize_id": "thanks", "name": "Thanks", "kind": "PRIZE_KIND_THANKS", "weight": 90}]}}
SIGN_IN = {"sign_in": {"rewards": [{"day": 1, "reward": {"points": 5}}]}}


async def test_life_cycle_draft_scheduled_live_closed(env: Env) -> None:
    """A draft is published (scheduled), turns live at its start time and closes for good."""
    draft = await env.activity(SIGN_IN, starts=timedelta(hours=1), publish=False)
    assert draft.state == pb.ACTIVITY_STATE_DRAFT
    assert draft.owner.kind == pb.OWNER_KIND_BRAND and draft.owner.id == env.brand_id
    published = (await env.engagement.PublishActivity(pb.PublishActivityRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=draft.activity_id))).activity
    assert published.state == pb.ACTIVITY_STATE_SCHEDULED
    env.clock.advance(timedelta(hours=2))
    live = (await env.engagement.GetActivity(pb.GetActivityRequest(
        brand_id=env.brand_id, activity_id=draft.activity_id))).activity
    assert live.state == pb.ACTIVITY_STATE_LIVE
    closed = (await env.engagement.CloseActivity(pb.CloseActivityRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=draft.activity_id))).activity
    assert closed.state == pb.ACTIVITY_STATE_CLOSED and closed.close_time.seconds > 0
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.engagement.CloseActivity(pb.CloseActivityRequest(
            request_id=rid(), brand_id=env.brand_id, activity_id=draft.activity_id))
    assert remote_error(caught.value).reason == "ACTIVITY_CLOSED"


async def test_list_filters_by_state_kind_and_time_and_pages(env: Env) -> None:
    """Listing filters by state, kind and time window, and pages with a token."""
    live_lottery = await env.activity(LOTTERY)
    await env.activity(SIGN_IN)
    await env.activity(SIGN_IN, publish=False)
    later = await env.activity(SIGN_IN, starts=timedelta(days=40), ends=timedelta(days=50))
    lotteries = await env.engagement.ListActivities(pb.ListActivitiesRequest(
        brand_id=env.brand_id, kind=pb.ACTIVITY_KIND_LOTTERY))
    assert [a.activity_id for a in lotteries.activities] == [live_lottery.activity_id]
    drafts = await env.engagement.ListActivities(pb.ListActivitiesRequest(
        brand_id=env.brand_id, state=pb.ACTIVITY_STATE_DRAFT))
    assert len(drafts.activities) == 1
    window = await env.engagement.ListActivities(pb.ListActivitiesRequest(
        brand_id=env.brand_id, window_start_time=timestamp(env.clock.now + timedelta(days=35)),
        window_end_time=timestamp(env.clock.now + timedelta(days=60))))
    assert [a.activity_id for a in window.activities] == [later.activity_id]
    first = await env.engagement.ListActivities(pb.ListActivitiesRequest(
        brand_id=env.brand_id, page_size=3))
    second = await env.engagement.ListActivities(pb.ListActivitiesRequest(
        brand_id=env.brand_id, page_size=3, page_token=first.next_page_token))
    assert len(first.activities) == 3 and len(second.activities) == 1
    assert not second.next_page_token


@pytest.mark.parametrize(("config", "field"), [
    ({"lottery": {"prizes": [{"prize_id": "p", "name": "P", "kind": "PRIZE_KIND_PHYSICAL",
                              "weight": 0, "stock": 1}]}}, "spec.lottery.prizes[0].weight"),
    ({"lottery": {"prizes": [{"prize_id": "p", "name": "P", "kind": "PRIZE_KIND_COUPON",
                              "weight": 1, "stock": 1}]}},
     "spec.lottery.prizes[0].coupon_template_id"),
    ({"vote": {"options": [{"option_id": "a", "label": "A"}]}}, "spec.vote.options"),
    ({"quiz": {"questions": [{"question_id": "q", "text": "?", "options": [
        {"option_id": "a", "text": "A"}, {"option_id": "b", "text": "B"}],
        "correct_option_ids": ["c"]}]}}, "spec.quiz.questions[0].correct_option_ids[0]"),
    ({"sign_in": {"make_up_allowed": True}}, "spec.sign_in.make_up_window_days"),
    ({}, "spec.config"),
])
async def test_invalid_configuration_names_the_field(env: Env, config: dict[str, object],
                                                      field: str) -> None:
    """An invalid configuration is refused with INVALID_ARGUMENT naming the field."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.activity(config)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert remote_error(caught.value).metadata["field"] == field


async def test_end_before_start_is_refused(env: Env) -> None:
    """An end time before the start time is refused naming spec.end_time."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.activity(SIGN_IN, starts=timedelta(hours=2), ends=timedelta(hours=1))
    assert remote_error(caught.value).metadata["field"] == "spec.end_time"


async def _update(env: Env, activity: pb.Activity, changes: dict[str, object],
                  actor: pb.Owner | None = None) -> pb.Activity:
    spec = json_format.MessageToDict(activity.spec, preserving_proto_field_name=True)
    spec["lottery"].update(changes) if "lottery" in spec else spec.update(changes)
    reply = await env.engagement.UpdateActivity(pb.UpdateActivityRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=activity.activity_id,
        spec=json_format.ParseDict(spec, pb.ActivitySpec()), actor=actor))
    return reply.activity


async def test_live_lottery_changes_are_limited(env: Env) -> None:
    """While live: stock may rise but never below what was won; weights are fixed."""
    activity = await env.activity(LOTTERY)
    prizes = json_format.MessageToDict(activity.spec.lottery,
                                       preserving_proto_field_name=True)["prizes"]
    await env.db.execute("UPDATE lottery_prizes SET won = 3 WHERE activity_id = $1 "
                         "AND prize_id = 'p1'", activity.activity_id)
    lowered = [dict(prizes[0], stock=2), prizes[1]]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _update(env, activity, {"prizes": lowered})
    error = remote_error(caught.value)
    assert (error.reason, error.metadata["field"]) == ("STOCK_BELOW_WON",
                                                       "spec.lottery.prizes[0].stock")
    reweighted = [dict(prizes[0], weight=50), prizes[1]]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _update(env, activity, {"prizes": reweighted})
    assert remote_error(caught.value).reason == "LIVE_FIELD_LOCKED"
    raised = await _update(env, activity, {"prizes": [dict(prizes[0], stock=8), prizes[1]]})
    assert raised.spec.lottery.prizes[0].stock == 8 and raised.version == 2
    status = await env.engagement.GetLotteryStatus(pb.GetLotteryStatusRequest(
        brand_id=env.brand_id, activity_id=activity.activity_id))
    assert (status.prizes[0].won, status.prizes[0].remaining) == (3, 5)


async def test_isv_app_changes_only_its_own_activities(env: Env) -> None:
    """An ISV app is recorded as owner and may not change the brand's own activities."""
    app = pb.Owner(kind=pb.OWNER_KIND_ISV_APP, id="app_key_1")
    mine = await env.activity(SIGN_IN, owner=app)
    assert mine.owner.kind == pb.OWNER_KIND_ISV_APP and mine.owner.id == "app_key_1"
    brands = await env.activity(SIGN_IN)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.engagement.CloseActivity(pb.CloseActivityRequest(
            request_id=rid(), brand_id=env.brand_id, activity_id=brands.activity_id,
            actor=app))
    assert remote_error(caught.value).reason == "NOT_ACTIVITY_OWNER"
    closed = await env.engagement.CloseActivity(pb.CloseActivityRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=mine.activity_id, actor=app))
    assert closed.activity.state == pb.ACTIVITY_STATE_CLOSED
