"""Outbound messages and the life cycle of their status."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from services.messaging.domain.channels import Channel, Purpose

MAX_ATTEMPTS = 5


class MessageStatus(enum.Enum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class OutboundMessage:
    message_id: str
    brand_id: str
    account_id: str
    channel: Channel
    purpose: Purpose
    template_id: str
    variables: dict[str, str]
    campaign_id: str | None
    journey_id: str | None
    status: MessageStatus
    reason: str
    not_before: datetime
    attempts: int
    deferrals: int
    provider_message_id: str | None
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None


@dataclass(frozen=True)
class SandboxDelivery:
    """What the sandbox provider recorded instead of sending (address masked)."""

    delivery_id: str
    brand_id: str
    channel: Channel
    message_id: str
    masked_address: str
    title: str
    body: str
    params: dict[str, str]
    created_at: datetime


def retry_delay_seconds(attempts: int) -> float:
    """Back off 10 s, 40 s, 160 s, ... after each failed attempt."""
    return float(10 * 4 ** max(0, attempts - 1))
