"""Messaging's own events (topic "messaging"), written in batches to the outbox."""

from __future__ import annotations

import enum

from brandclub.events.v1 import messaging_events_pb2 as events
from libs.db import Connection
from libs.metrics import message_outcome
from libs.outbox import new_envelope
from services.messaging.adapters.outbox_batch import add_envelopes
from services.messaging.domain.channels import Channel
from services.messaging.domain.governance import Reason
from services.messaging.domain.messages import MessageStatus, OutboundMessage

TOPIC = "messaging"
PRODUCER = "messaging"


class Failure(enum.Enum):
    """How a FAILED message failed (the event's reason; the code itself goes as error_code)."""

    SEND_FAILED = "SEND_FAILED"
    NOT_DELIVERED = "NOT_DELIVERED"


# By name: a Channel, MessageStatus (but SENDING, never published), Reason or Failure without
# its event enum value fails at import, so a new one cannot be published as UNSPECIFIED.
CHANNELS = {c: events.MessageChannel.Value(f"MESSAGE_CHANNEL_{c.name}") for c in Channel}
STATUSES: dict[MessageStatus, events.MessageStatus.ValueType] = {
    s: events.MessageStatus.Value(f"MESSAGE_STATUS_{s.name}")
    for s in MessageStatus if s is not MessageStatus.SENDING}
REASONS = {r: events.MessageStatusReason.Value(f"MESSAGE_STATUS_REASON_{r.name}")
           for r in [*Reason, *Failure]}


def status_changed(message: OutboundMessage, status: MessageStatus,
                   reason: str = "", failure: Failure = Failure.SEND_FAILED
                   ) -> events.MessageStatusChanged:
    """The event for `message` now in `status`; `reason` is what the message stores: a
    suppression Reason's value, or a failure's error code."""
    change = events.MessageStatusChanged(
        brand_id=message.brand_id, account_id=message.account_id,
        message_id=message.message_id, channel=CHANNELS[message.channel],
        status=STATUSES[status], campaign_id=message.campaign_id or "",
        journey_id=message.journey_id or "")
    if status is MessageStatus.SUPPRESSED:
        change.reason = REASONS[Reason(reason)]
    elif status is MessageStatus.FAILED:
        change.reason = REASONS[failure]
        change.error_code = reason
    return change


async def message_status_events(conn: Connection, messages: list[OutboundMessage],
                                status: MessageStatus, reasons: dict[str, str] | None = None,
                                failure: Failure = Failure.SEND_FAILED) -> None:
    """One MessageStatusChanged per message, in the caller's transaction (one round trip);
    `reasons` by message id as in `status_changed`."""
    await add_envelopes(conn, TOPIC, [
        new_envelope(brand_id=m.brand_id, producer=PRODUCER,
                     payload=status_changed(m, status, (reasons or {}).get(m.message_id, ""),
                                            failure))
        for m in messages])
    count_outcomes(messages, status, reasons or {}, failure)


def count_outcomes(messages: list[OutboundMessage], status: MessageStatus,
                   reasons: dict[str, str], failure: Failure) -> None:
    """brandclub_messages_total (docs/operations.md), by the event's closed reason set: a
    suppression's Reason, a failure's kind (the provider's own code stays in the event)."""
    for message in messages:
        reason = failure.value if status is MessageStatus.FAILED else \
            reasons.get(message.message_id, "")
        message_outcome(status.value, reason)
