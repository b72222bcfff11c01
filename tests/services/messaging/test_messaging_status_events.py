"""MessageStatusChanged: what messaging publishes on every status change, in enums."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from brandclub.events.v1 import envelope_pb2
from brandclub.events.v1 import messaging_events_pb2 as events
from brandclub.messaging.v1 import messaging_service_pb2 as pb
from libs.outbox import stream_name
from libs.redis import connect_redis
from services.messaging.domain.channels import Channel, Purpose
from services.messaging.domain.governance import Reason
from services.messaging.domain.messages import MessageStatus, OutboundMessage
from services.messaging.usecases.status_events import Failure, status_changed
from tests.services.messaging.conftest import Env, rid

AT = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def message(channel: Channel = Channel.SMS) -> OutboundMessage:
    return OutboundMessage("msg_1", "brand_1", "acc_1", channel, Purpose.MARKETING, "tpl_1", {},
                           "cmp_1", None, MessageStatus.QUEUED, "", AT, 0, 0, None, AT, None,
                           None, None)


@pytest.mark.parametrize("channel", list(Channel))
def test_every_channel_has_its_event_value(channel: Channel) -> None:
    """Each channel is published as its own MESSAGE_CHANNEL_ value, never UNSPECIFIED."""
    change = status_changed(message(channel), MessageStatus.QUEUED)
    assert events.MessageChannel.Name(change.channel) == f"MESSAGE_CHANNEL_{channel.name}"


@pytest.mark.parametrize("status", [s for s in MessageStatus if s is not MessageStatus.SENDING])
def test_every_published_status_has_its_event_value(status: MessageStatus) -> None:
    """Each status a message reaches (all but the internal SENDING) has its enum value."""
    reason = Reason.NO_ADDRESS.value if status is MessageStatus.SUPPRESSED else ""
    change = status_changed(message(), status, reason)
    assert events.MessageStatus.Name(change.status) == f"MESSAGE_STATUS_{status.name}"


@pytest.mark.parametrize("reason", list(Reason))
def test_every_suppression_reason_has_its_event_value(reason: Reason) -> None:
    """A suppression is published with its reason as an enum value and no error code."""
    change = status_changed(message(), MessageStatus.SUPPRESSED, reason.value)
    assert events.MessageStatusReason.Name(change.reason) == \
        f"MESSAGE_STATUS_REASON_{reason.name}"
    assert change.error_code == ""


@pytest.mark.parametrize("failure", list(Failure))
def test_a_failure_keeps_the_providers_code_beside_its_kind(failure: Failure) -> None:
    """A failure says how it failed (enum) and carries the provider's own code verbatim."""
    change = status_changed(message(), MessageStatus.FAILED, "isv.MOBILE_NUMBER_ILLEGAL",
                            failure)
    assert events.MessageStatusReason.Name(change.reason) == \
        f"MESSAGE_STATUS_REASON_{failure.name}"
    assert change.error_code == "isv.MOBILE_NUMBER_ILLEGAL"


def test_other_statuses_carry_no_reason() -> None:
    """Queued, sent, delivered and read messages are published without a reason."""
    for status in (MessageStatus.QUEUED, MessageStatus.SENT, MessageStatus.DELIVERED,
                   MessageStatus.READ):
        change = status_changed(message(), status)
        assert (change.reason, change.error_code) == (
            events.MESSAGE_STATUS_REASON_UNSPECIFIED, "")


async def published(env: Env) -> list[events.MessageStatusChanged]:
    """Every MessageStatusChanged written, oldest first, each once: those the relay already
    moved to the stream, then those still in the outbox. The outbox is read first: the relay
    runs meanwhile, so a row may move between the two reads (then it is in both, and the event
    id keeps it once) but can never slip past both."""
    waiting = [bytes(r["envelope"]) for r in await env.sql(
        "SELECT envelope FROM messaging.outbox WHERE topic = 'messaging' ORDER BY id")]
    redis = connect_redis(env.redis_url)
    try:
        entries = await redis.xrange(stream_name("messaging")) or []
        moved = [raw for _, fields in entries
                 if isinstance(raw := (fields or {}).get(b"envelope"), bytes)]
    finally:
        await redis.aclose()
    seen: set[str] = set()
    changes = []
    for raw in [*moved, *waiting]:
        envelope = envelope_pb2.EventEnvelope.FromString(raw)
        if envelope.event_id in seen:
            continue
        seen.add(envelope.event_id)
        change = events.MessageStatusChanged()
        assert envelope.payload.Unpack(change)
        changes.append(change)
    return changes


async def test_a_suppressed_and_a_delivered_message_are_published(env: Env) -> None:
    """Through the API and the dispatcher: the opted-out message is published QUEUED then
    SUPPRESSED / OPTED_OUT, the service message QUEUED then DELIVERED, both on INBOX."""
    brand = await env.brand()
    template = await env.inbox_template(brand, body="{{offer}}")
    suppressed = (await env.messaging.SendMessage(pb.SendMessageRequest(
        request_id=rid(), brand_id=brand, account_id="acc_1", template_id=template.template_id,
        variables={"offer": "20% off"}))).message
    await env.messaging.SetConsent(pb.SetConsentRequest(
        request_id=rid(), brand_id=brand, account_id="acc_1", channel=pb.CHANNEL_INBOX,
        purpose=pb.PURPOSE_MARKETING, granted=False, source="member_centre"))
    delivered = (await env.messaging.SendMessage(pb.SendMessageRequest(
        request_id=rid(), brand_id=brand, account_id="acc_2", template_id=template.template_id,
        variables={"offer": "20% off"}))).message
    await env.dispatch()
    by_message: dict[str, list[tuple[int, int]]] = {}
    for change in await published(env):
        assert change.brand_id == brand and change.channel == events.MESSAGE_CHANNEL_INBOX
        by_message.setdefault(change.message_id, []).append((change.status, change.reason))
    assert by_message[suppressed.message_id] == [
        (events.MESSAGE_STATUS_QUEUED, events.MESSAGE_STATUS_REASON_UNSPECIFIED),
        (events.MESSAGE_STATUS_SUPPRESSED, events.MESSAGE_STATUS_REASON_OPTED_OUT)]
    assert by_message[delivered.message_id] == [
        (events.MESSAGE_STATUS_QUEUED, events.MESSAGE_STATUS_REASON_UNSPECIFIED),
        (events.MESSAGE_STATUS_DELIVERED, events.MESSAGE_STATUS_REASON_UNSPECIFIED)]
