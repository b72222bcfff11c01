"""Row <-> entity mappers shared by messaging's repositories."""

from __future__ import annotations

import json

from libs.db import Record
from services.messaging.domain.campaigns import Campaign, CampaignStatus
from services.messaging.domain.channels import Channel, Purpose
from services.messaging.domain.inbox import InboxMessage
from services.messaging.domain.messages import MessageStatus, OutboundMessage
from services.messaging.domain.templates import Template


def inbox_from_row(r: Record) -> InboxMessage:
    return InboxMessage(r["message_id"], r["brand_id"], r["account_id"], r["title"], r["body"],
                        r["read_at"] is not None, r["created_at"])


def message_from_row(r: Record) -> OutboundMessage:
    return OutboundMessage(
        r["message_id"], r["brand_id"], r["account_id"], Channel(r["channel"]),
        Purpose(r["purpose"]), r["template_id"], json.loads(r["variables"]), r["campaign_id"],
        r["journey_id"], MessageStatus(r["status"]), r["reason"], r["not_before"],
        r["attempts"], r["deferrals"], r["provider_message_id"], r["created_at"], r["sent_at"],
        r["delivered_at"], r["read_at"])


def template_from_row(r: Record) -> Template:
    return Template(r["template_id"], r["brand_id"], Channel(r["channel"]),
                    Purpose(r["purpose"]), r["name"], r["title"], r["body"],
                    r["provider_template_code"], json.loads(r["provider_params"]),
                    list(r["variables"]), list(r["custom_variables"]), r["link_url"],
                    r["created_at"])


def campaign_from_row(r: Record) -> Campaign:
    return Campaign(r["campaign_id"], r["brand_id"], r["name"], r["snapshot_id"],
                    r["template_id"], Channel(r["channel"]), CampaignStatus(r["status"]),
                    json.loads(r["variables"]), r["throttle_per_second"],
                    r["holdout_basis_points"], r["conversion_window_days"], r["schedule_at"],
                    r["launched_at"], r["created_at"])
