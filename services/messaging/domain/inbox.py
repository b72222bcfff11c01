"""The in-app message box."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class InboxMessage:
    message_id: str
    brand_id: str
    account_id: str
    title: str
    body: str
    read: bool
    created_at: datetime
