"""Signed delivery receipts from providers: the signature check and the body's shape."""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from libs.errors import InvalidArgument, Unauthenticated

RECEIPT_SECRET = "receipt_secret"
MIN_SECRET_LENGTH = 32
# A signed callback is accepted this long either side of its timestamp (replay window).
WINDOW_SECONDS = 300
MAX_RECEIPTS = 500
MAX_FIELD_LENGTH = 128


class ReceiptOutcome(enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Receipt:
    provider_message_id: str
    delivered: bool
    provider_time: datetime | None
    error_code: str


@dataclass(frozen=True)
class ReceiptResult:
    provider_message_id: str
    outcome: ReceiptOutcome
    reason: str = ""
    message_id: str = ""


def receipt_webhook_path(brand_id: str, channel: str) -> str:
    return f"/webhooks/v1/brands/{brand_id}/channels/{channel}/receipts"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str,
                     now: datetime) -> None:
    """Refuse a stale or future timestamp and a signature the secret did not make."""
    try:
        sent = int(timestamp.strip())
    except ValueError:
        raise Unauthenticated("X-Brandclub-Timestamp must be unix seconds",
                              reason="RECEIPT_TIMESTAMP_INVALID") from None
    if abs(now.timestamp() - sent) > WINDOW_SECONDS:
        raise Unauthenticated("the receipt's timestamp is more than 5 minutes off",
                              reason="RECEIPT_TIMESTAMP_STALE")
    if not signature.isascii() or not hmac.compare_digest(sign(secret, timestamp.strip(), body),
                                                          signature.strip().lower()):
        raise Unauthenticated("the receipt's signature does not match",
                              reason="RECEIPT_SIGNATURE_INVALID")


def _text(item: dict[str, object], name: str, where: str, *, required: bool) -> str:
    value = item.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > MAX_FIELD_LENGTH:
        raise InvalidArgument(f"{where}.{name} must be a string of at most "
                              f"{MAX_FIELD_LENGTH} characters", field=f"{where}.{name}",
                              reason="FIELD_TYPE_INVALID")
    if required and not value.strip():
        raise InvalidArgument(f"{where}.{name} is required", field=f"{where}.{name}",
                              reason="FIELD_REQUIRED")
    return value.strip()


def parse_receipts(body: bytes) -> list[Receipt]:
    """{"receipts": [{"provider_message_id", "status", "provider_time"?, "error_code"?}]}."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidArgument("body must be JSON", field="body", reason="INVALID_JSON") from None
    items = payload.get("receipts") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items:
        raise InvalidArgument("receipts must be a non-empty array", field="receipts",
                              reason="FIELD_REQUIRED")
    if len(items) > MAX_RECEIPTS:
        raise InvalidArgument(f"at most {MAX_RECEIPTS} receipts per callback",
                              field="receipts", reason="TOO_MANY_RECEIPTS")
    receipts = []
    for index, item in enumerate(items):
        where = f"receipts[{index}]"
        if not isinstance(item, dict):
            raise InvalidArgument(f"{where} must be an object", field=where,
                                  reason="FIELD_TYPE_INVALID")
        unknown = set(item) - {"provider_message_id", "status", "provider_time", "error_code"}
        if unknown:
            name = sorted(unknown)[0]
            raise InvalidArgument(f"{where}.{name} is not a receipt field",
                                  field=f"{where}.{name}", reason="FIELD_UNKNOWN")
        provider_message_id = _text(item, "provider_message_id", where, required=True)
        status = _text(item, "status", where, required=True).lower()
        if status not in ("delivered", "failed"):
            raise InvalidArgument(f"{where}.status must be delivered or failed",
                                  field=f"{where}.status", reason="FIELD_ENUM_INVALID")
        raw_time = _text(item, "provider_time", where, required=False)
        provider_time = None
        if raw_time:
            try:
                provider_time = datetime.fromisoformat(raw_time.replace("Z", "+00:00"))
            except ValueError:
                provider_time = None
            if provider_time is None or provider_time.tzinfo is None:
                raise InvalidArgument(f"{where}.provider_time must be an RFC 3339 date-time "
                                      "with a zone", field=f"{where}.provider_time",
                                      reason="FIELD_TYPE_INVALID")
            provider_time = provider_time.astimezone(UTC)
        receipts.append(Receipt(provider_message_id, status == "delivered", provider_time,
                                _text(item, "error_code", where, required=False)))
    return receipts
