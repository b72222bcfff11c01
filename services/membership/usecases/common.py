"""Shared by the membership use cases: the outbox topic, the clock and input checks."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from libs.db import Connection
from libs.errors import InvalidArgument, NotFound, require

TOPIC = "membership"
PRODUCER = "membership"
MAX_ID_LENGTH = 128
_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9_\-.@:]{1,128}$")
_CHANNEL = re.compile(r"^[a-z0-9_\-.]{0,40}$")

Result = TypeVar("Result")
Reply = TypeVar("Reply")
CommitOnce = Callable[[Callable[[Connection], Awaitable[Result]]], Awaitable[Reply]]
"""Runs a mutation's transaction once per request id and answers its reply; a replay answers
the first reply without running the transaction again (the api layer's IdempotentExecutor)."""


def now_utc() -> datetime:
    return datetime.now(UTC)


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
    value = value.strip().lower() or default
    if not _CHANNEL.match(value):
        raise InvalidArgument("channel must be at most 40 lower-case letters, digits or _-.",
                              field="channel")
    return value


async def member_not_found(brand_id: str, account_id: str) -> NotFound:
    return NotFound(f"account {account_id} is not a member of brand {brand_id}",
                    reason="MEMBER_NOT_FOUND", metadata={"brand_id": brand_id})
