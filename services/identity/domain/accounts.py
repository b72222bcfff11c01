"""Accounts: one per marketplace account id."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from libs.errors import InvalidArgument, require

_MARKETPLACE_ID = re.compile(r"^[A-Za-z0-9_\-.@]{1,64}$")


@dataclass(frozen=True)
class Account:
    account_id: str
    marketplace_account_id: str
    created_at: datetime


def new_account_id() -> str:
    return f"acc_{uuid.uuid4().hex}"


def valid_marketplace_account_id(value: str) -> str:
    value = require(value, "marketplace_account_id")
    if not _MARKETPLACE_ID.match(value):
        raise InvalidArgument(
            "marketplace_account_id must be 1-64 letters, digits or _-.@",
            field="marketplace_account_id",
        )
    return value
