"""Checks of the identifiers and values a caller hands to membership: each refuses bad input
with INVALID_ARGUMENT naming the field, and returns the value as it is stored."""

from __future__ import annotations

import re
from datetime import datetime

from libs.errors import InvalidArgument, require

MAX_ID_LENGTH = 128
_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9_\-.@:]{1,128}$")
_CHANNEL = re.compile(r"^[a-z0-9_\-.]{0,40}$")
_INVITE_CODE = re.compile(r"^[A-Za-z0-9_\-]{0,64}$")


def valid_account(value: str, field: str = "account_id") -> str:
    value = require(value, field)
    if not _ACCOUNT_ID.match(value):
        raise InvalidArgument(f"{field} must be 1-128 letters, digits or _-.@:", field=field)
    return value


def valid_identifier(value: str, field: str) -> str:
    value = require(value, field)
    if len(value) > MAX_ID_LENGTH:
        raise InvalidArgument(f"{field} must be at most {MAX_ID_LENGTH} characters",
                              field=field)
    return value


def valid_channel(value: str, default: str) -> str:
    """The channel in lower case, `default` when empty."""
    value = value.strip().lower() or default
    if not _CHANNEL.match(value):
        raise InvalidArgument("channel must be at most 40 lower-case letters, digits or _-.",
                              field="channel")
    return value


def valid_invite_code(value: str) -> str:
    """The invite code without surrounding blanks; empty when the shopper had none."""
    value = value.strip()
    if not _INVITE_CODE.match(value):
        raise InvalidArgument("invite_code must be at most 64 letters, digits, _ or -",
                              field="invite_code")
    return value


def occurred_at(value: datetime | None, field: str) -> datetime:
    """A fact's time: required, because a fact replayed later must keep its own time."""
    if value is None:
        raise InvalidArgument(f"{field} is required", field=field, reason="FIELD_REQUIRED")
    return value
