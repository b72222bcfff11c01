"""Message box, consent, cancelled members, quiet hours and frequency caps, end to end through
the messaging gRPC API and its dispatcher."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

from brandclub.events.v1 import envelope_pb2, membership_events_pb2
from brandclub.messaging.v1 import messaging_service_pb2 as pb
from libs.grpc_client import remote_error
from libs.outbox import new_envelope, stream_name
from libs.redis import connect_redis
from tests.services.messaging.conftest import Env, rid
from tests.services.messaging.messages import send, status_of
from tests.services.messaging.shoppers import shopper


async def test_inbox_paging_unread_and_mark_read(env: Env) -> None:
    """Messages land in the box; paging walks them newest first; mark read lowers unread."""
    brand = await env.brand()
    template = await env.inbox_template(brand, purpose=pb.PURPOSE_SERVICE,
                                        body="Order {{order_no}} shipped", custom=("order_no",))
    for i in range(5):
        await send(env, brand, "acc_1", template.template_id, order_no=str(i))
        env.clock.now += timedelta(seconds=1)
        await env.dispatch()
    seen: list[str] = []
    token = ""
    while True:
        page = await env.messaging.ListInboxMessages(pb.ListInboxMessagesRequest(
            brand_id=brand, account_id="acc_1", page_size=2, page_token=token))
        seen += [m.body for m in page.messages]
        assert page.unread_count == 5
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"Order {i} shipped" for i in (4, 3, 2, 1, 0)]
    first = (await env.messaging.ListInboxMessages(pb.ListInboxMessagesRequest(
        brand_id=brand, account_id="acc_1", page_size=1))).messages[0]
    marked = await env.messaging.MarkInboxMessagesRead(pb.MarkInboxMessagesReadRequest(
        request_id=rid(), brand_id=brand, account_id="acc_1", message_ids=[first.message_id]))
    assert (marked.marked_count, marked.unread_count) == (1, 4)
    unread = await env.messaging.ListInboxMessages(pb.ListInboxMessagesRequest(
        brand_id=brand, account_id="acc_1", unread_only=True))
    assert first.message_id not in [m.message_id for m in unread.messages]
    everything = await env.messaging.MarkInboxMessagesRead(pb.MarkInboxMessagesReadRequest(
        request_id=rid(), brand_id=brand, account_id="acc_1", all=True))
    assert (everything.marked_count, everything.unread_count) == (4, 0)
    count = await env.messaging.GetInboxUnreadCount(pb.GetInboxUnreadCountRequest(
        brand_id=brand, account_id="acc_1"))
    assert count.unread_count == 0
    rows = await env.sql("SELECT status, read_at FROM messaging.outbound_messages")
    assert {r["status"] for r in rows} == {"read"}


async def test_mark_read_of_foreign_message_is_not_found(env: Env) -> None:
    """Marking a message that is not in the member's box fails naming the message."""
    brand = await env.brand()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.messaging.MarkInboxMessagesRead(pb.MarkInboxMessagesReadRequest(
            request_id=rid(), brand_id=brand, account_id="acc_1", message_ids=["inb_x"]))
    error = remote_error(caught.value)
    assert (error.reason, error.metadata["message_id"]) == ("INBOX_MESSAGE_NOT_FOUND", "inb_x")


async def test_template_with_unknown_variable_is_refused(env: Env) -> None:
    """A template using a variable nobody fills is refused, naming the field and variable."""
    brand = await env.brand()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.inbox_template(brand, body="Hello {{nickname}}", custom=())
    error = remote_error(caught.value)
    assert error.reason == "UNKNOWN_TEMPLATE_VARIABLE"
    assert (error.metadata["field"], error.metadata["variable"]) == ("body", "nickname")


async def test_send_without_a_custom_variable_is_refused(env: Env) -> None:
    """Sending a template without the value of one of its custom variables is refused."""
    brand = await env.brand()
    template = await env.inbox_template(brand, purpose=pb.PURPOSE_SERVICE,
                                        body="Code {{code}}", custom=("code",))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await send(env, brand, "acc_1", template.template_id)
    assert remote_error(caught.value).reason == "TEMPLATE_VARIABLE_MISSING"


async def test_opt_out_is_honoured_for_already_queued_messages(env: Env) -> None:
    """An opt-out recorded after a message was queued suppresses it with OPTED_OUT."""
    brand = await env.brand()
    template = await env.inbox_template(brand, body="{{offer}}")
    message = await send(env, brand, "acc_1", template.template_id, offer="20% off")
    await env.messaging.SetConsent(pb.SetConsentRequest(
        request_id=rid(), brand_id=brand, account_id="acc_1", channel=pb.CHANNEL_INBOX,
        purpose=pb.PURPOSE_MARKETING, granted=False, source="member_centre"))
    await env.dispatch()
    after = await status_of(env, brand, message.message_id)
    assert (after.status, after.reason) == (pb.MESSAGE_STATUS_SUPPRESSED, "OPTED_OUT")
    box = await env.messaging.ListInboxMessages(pb.ListInboxMessagesRequest(
        brand_id=brand, account_id="acc_1"))
    assert list(box.messages) == []


async def test_sms_marketing_needs_explicit_consent(env: Env) -> None:
    """Without an opt-in, a marketing SMS is suppressed with NO_CONSENT."""
    brand = await env.brand()
    await env.messaging.ConfigureChannel(pb.ConfigureChannelRequest(
        request_id=rid(), brand_id=brand, channel=pb.CHANNEL_SMS, provider=pb.PROVIDER_SANDBOX))
    template = (await env.messaging.CreateTemplate(pb.CreateTemplateRequest(
        request_id=rid(), template=pb.Template(
            brand_id=brand, channel=pb.CHANNEL_SMS, purpose=pb.PURPOSE_MARKETING, name="sms",
            body="{{brand_name}} sale", provider_template_code="SMS_1")))).template
    message = await send(env, brand, "acc_1", template.template_id)
    await env.dispatch()
    after = await status_of(env, brand, message.message_id)
    assert (after.status, after.reason) == (pb.MESSAGE_STATUS_SUPPRESSED, "NO_CONSENT")


async def publish(env: Env, envelope: envelope_pb2.EventEnvelope) -> None:
    """Put one membership event on the bus and let messaging's consumer take it."""
    redis = connect_redis(env.redis_url)
    try:
        await redis.xadd(stream_name("membership"), {"envelope": envelope.SerializeToString()})
        consumer = env.options.loops["consumer"]
        await consumer.ensure_groups()
        assert await consumer.poll_once(block_ms=10) >= 1  # the brand's own events too
    finally:
        await redis.aclose()


def joined(brand: str, account: str, chosen: list[str],
           offered: tuple[str, ...] = ("profile", "marketing_sms", "marketing_wechat"),
           at: datetime | None = None) -> envelope_pb2.EventEnvelope:
    """Membership's MemberJoined for a card opened with these consent purposes."""
    envelope = new_envelope(brand_id=brand, producer="membership",
                            payload=membership_events_pb2.MemberJoined(
                                brand_id=brand, account_id=account, member_id=f"mbr_{account}",
                                program_id="prg_1", level=1, consent_purposes=chosen,
                                offered_purposes=offered))
    if at is not None:
        envelope.occur_time.FromDatetime(at)
    return envelope


async def sms_marketing(env: Env, brand: str) -> pb.Template:
    await env.messaging.ConfigureChannel(pb.ConfigureChannelRequest(
        request_id=rid(), brand_id=brand, channel=pb.CHANNEL_SMS, provider=pb.PROVIDER_SANDBOX))
    return (await env.messaging.CreateTemplate(pb.CreateTemplateRequest(
        request_id=rid(), template=pb.Template(
            brand_id=brand, channel=pb.CHANNEL_SMS, purpose=pb.PURPOSE_MARKETING, name="sms",
            body="{{brand_name}} sale", provider_template_code="SMS_1")))).template


async def sms_outcome(env: Env, brand: str, account: str, template: pb.Template) -> str:
    """Send one marketing SMS through the dispatcher; its suppression reason ("" if sent)."""
    message = await send(env, brand, account, template.template_id)
    await env.dispatch()
    after = await status_of(env, brand, message.message_id)
    if after.status == pb.MESSAGE_STATUS_SUPPRESSED:
        return after.reason
    assert after.status in (pb.MESSAGE_STATUS_SENT, pb.MESSAGE_STATUS_DELIVERED), after
    return ""


async def test_consent_given_when_opening_the_card_reaches_messaging(env: Env) -> None:
    """A card opened with consent to marketing_sms lets marketing SMS go out without any
    console call; withdrawing it afterwards suppresses them; an offered purpose left unticked
    is a refusal; a join event delivered after a later withdrawal does not undo it."""
    brand = await env.brand()
    template = await sms_marketing(env, brand)
    yes = await shopper(env, phone="13800138001")
    no = await shopper(env, phone="13800138002")
    await publish(env, joined(brand, yes, ["profile", "marketing_sms"]))
    await publish(env, joined(brand, no, ["profile"]))
    assert await sms_outcome(env, brand, yes, template) == ""
    assert await sms_outcome(env, brand, no, template) == "OPTED_OUT"
    consents = await env.messaging.ListConsents(pb.ListConsentsRequest(
        brand_id=brand, account_id=yes))
    assert {(c.channel, c.purpose, c.granted, c.source) for c in consents.consents} == {
        (pb.CHANNEL_SMS, pb.PURPOSE_MARKETING, True, "card_opening"),
        (pb.CHANNEL_WECHAT, pb.PURPOSE_MARKETING, False, "card_opening")}
    await env.messaging.SetConsent(pb.SetConsentRequest(
        request_id=rid(), brand_id=brand, account_id=yes, channel=pb.CHANNEL_SMS,
        purpose=pb.PURPOSE_MARKETING, granted=False, source="member_centre"))
    assert await sms_outcome(env, brand, yes, template) == "OPTED_OUT"
    late = joined(brand, yes, ["marketing_sms"], at=env.clock.now - timedelta(minutes=5))
    await publish(env, late)
    assert await sms_outcome(env, brand, yes, template) == "OPTED_OUT"


async def test_cancelled_member_gets_nothing_even_service(env: Env) -> None:
    """After MemberCancelled arrives on the bus, even a service message is suppressed."""
    brand = await env.brand()
    template = await env.inbox_template(brand, purpose=pb.PURPOSE_SERVICE, body="Receipt",
                                        custom=())
    redis = connect_redis(env.redis_url)
    try:
        envelope = new_envelope(brand_id=brand, producer="membership",
                                payload=membership_events_pb2.MemberCancelled(
                                    brand_id=brand, account_id="acc_9", member_id="mbr_9"))
        await redis.xadd(stream_name("membership"),
                         {"envelope": envelope.SerializeToString()})
        consumer = env.options.loops["consumer"]
        await consumer.ensure_groups()
        assert await consumer.poll_once(block_ms=10) >= 1  # the brand's own events too
    finally:
        await redis.aclose()
    message = await send(env, brand, "acc_9", template.template_id)
    await env.dispatch()
    after = await status_of(env, brand, message.message_id)
    assert (after.status, after.reason) == (pb.MESSAGE_STATUS_SUPPRESSED, "MEMBER_CANCELLED")
    assert isinstance(envelope, envelope_pb2.EventEnvelope)


async def test_quiet_hours_make_marketing_wait_then_send(env: Env) -> None:
    """A marketing message due at 23:00 local waits until quiet hours end at 08:00 local."""
    brand = await env.brand()
    await env.messaging.SetMessagingPolicy(pb.SetMessagingPolicyRequest(
        request_id=rid(), policy=pb.MessagingPolicy(brand_id=brand, quiet_start_minute=22 * 60,
                                                    quiet_end_minute=8 * 60)))
    env.clock.now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    template = await env.inbox_template(brand, body="{{offer}}")
    message = await send(env, brand, "acc_1", template.template_id, offer="x")
    await env.dispatch()
    waiting = await status_of(env, brand, message.message_id)
    assert waiting.status == pb.MESSAGE_STATUS_QUEUED
    assert waiting.deferrals == 1
    assert waiting.not_before_time.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 3, 0, 0,
                                                                      tzinfo=UTC)
    env.clock.now = datetime(2026, 3, 2, 23, 59, tzinfo=UTC)  # 07:59 local: still quiet
    assert await env.dispatch() == 0
    env.clock.now = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    await env.dispatch()
    assert (await status_of(env, brand, message.message_id)).status == \
        pb.MESSAGE_STATUS_DELIVERED


async def test_daily_and_weekly_caps_suppress_with_reason(env: Env) -> None:
    """Caps count marketing per member and channel per local day and week; service is free."""
    brand = await env.brand()
    await env.messaging.SetMessagingPolicy(pb.SetMessagingPolicyRequest(
        request_id=rid(), policy=pb.MessagingPolicy(brand_id=brand, daily_cap=2,
                                                    weekly_cap=3)))
    template = await env.inbox_template(brand, body="{{offer}}")
    service = await env.inbox_template(brand, purpose=pb.PURPOSE_SERVICE, body="Receipt",
                                       custom=())
    outcomes = []
    for day in range(2):  # Monday and Tuesday, 10:00 local
        env.clock.now = datetime(2026, 3, 2 + day, 2, 0, tzinfo=UTC)
        for _ in range(3):
            message = await send(env, brand, "acc_1", template.template_id, offer="x")
            await env.dispatch()
            outcomes.append((await status_of(env, brand, message.message_id)).reason)
    receipt = await send(env, brand, "acc_1", service.template_id)
    await env.dispatch()
    assert outcomes == ["", "", "FREQUENCY_CAP_DAILY", "", "FREQUENCY_CAP_WEEKLY",
                        "FREQUENCY_CAP_WEEKLY"]
    assert (await status_of(env, brand, receipt.message_id)).status == \
        pb.MESSAGE_STATUS_DELIVERED


async def test_policy_validation_names_the_field(env: Env) -> None:
    """A quiet-hour minute out of range is refused naming the field."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.messaging.SetMessagingPolicy(pb.SetMessagingPolicyRequest(
            request_id=rid(), policy=pb.MessagingPolicy(brand_id="brd_1",
                                                        quiet_start_minute=1440)))
    assert remote_error(caught.value).metadata["field"] == "policy.quiet_start_minute"
