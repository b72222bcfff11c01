"""Messaging's own events (topic "messaging"), written in batches to the outbox."""

from __future__ import annotations

from brandclub.events.v1 import messaging_events_pb2
from libs.db import Connection
from libs.outbox import new_envelope
from services.messaging.adapters.outbox_batch import add_envelopes
from services.messaging.domain.messages import MessageStatus, OutboundMessage

TOPIC = "messaging"
PRODUCER = "messaging"


async def message_status_events(conn: Connection, messages: list[OutboundMessage],
                                status: MessageStatus, reasons: dict[str, str] | None = None
                                ) -> None:
    """One MessageStatusChanged per message, in the caller's transaction (one round trip)."""
    if not messages:
        return
    envelopes = []
    for m in messages:
        envelope = new_envelope(brand_id=m.brand_id, producer=PRODUCER,
                                payload=messaging_events_pb2.MessageStatusChanged(
                                    brand_id=m.brand_id, account_id=m.account_id,
                                    message_id=m.message_id, channel=m.channel.name,
                                    status=status.name,
                                    reason=(reasons or {}).get(m.message_id, ""),
                                    campaign_id=m.campaign_id or "",
                                    journey_id=m.journey_id or ""))
        envelopes.append(envelope)
    await add_envelopes(conn, TOPIC, envelopes)
