"""Marketplace facts ingestion: the marketplace pushes what shoppers did (followed or unfollowed
a shop, added to cart, paid an order, got a refund) and what became of their accounts (abnormal,
last active), in signed batches; each fact is applied once and answered on its own.

Authentication: `X-Marketplace-Timestamp` (Unix seconds, within 5 minutes of our clock) and
`X-Marketplace-Signature` = lower-case hex HMAC-SHA256 under the shared secret
(`MARKETPLACE_WEBHOOK_SECRET`, base64) of `<timestamp>.` followed by the raw body bytes. The
timestamp is inside the signed bytes, so a captured batch cannot be given a fresh timestamp.

Idempotency: a fact's `event_id` is the idempotency key of the membership call (the Record*
RPCs claim it; follows use request id `mkt:<event_id>`), so a re-delivered fact changes nothing
and is answered `duplicate`. One bad fact is `rejected` with a reason and never fails the others.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import grpc
from aiohttp import web
from google.protobuf.timestamp_pb2 import Timestamp

from brandclub.identity.v1 import identity_service_pb2 as identity_pb
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from libs.clock import system_clock
from libs.errors import Code, DomainError, InvalidArgument, Unauthenticated
from libs.grpc_client import remote_error
from libs.logging import get_logger
from services.gateway.adapters.upstreams import Upstreams
from services.gateway.api.app_keys import UPSTREAMS
from services.gateway.api.http_common import read_body_bytes
from services.gateway.api.openplatform import OPEN_PLATFORM
from services.gateway.api.routes import Route, RouteTable, Schema, array, integer, obj, string

log = get_logger(__name__)

# The shared secret, set on the application by the composition root (GatewaySettings).
SECRET = web.AppKey("marketplace_webhook_secret", bytes)
SIGNATURE_HEADER = "X-Marketplace-Signature"
TIMESTAMP_HEADER = "X-Marketplace-Timestamp"
WINDOW_SECONDS = 300
MAX_BODY_BYTES = 1024 * 1024
MAX_FACTS = 500
MAX_ID_LENGTH = 120
PATH = "/marketplace/v1/events"

# Failures worth delivering again later (the fact was not applied).
_RETRYABLE = {Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.INTERNAL, Code.ABORTED,
              Code.RESOURCE_EXHAUSTED}


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature the marketplace sends for a body at a timestamp."""
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: bytes, timestamp: str | None, signature: str | None, body: bytes,
           now: float) -> None:
    if not timestamp or not signature:
        raise Unauthenticated(f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required",
                              reason="SIGNATURE_MISSING")
    timestamp = timestamp.strip()
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise Unauthenticated(f"{TIMESTAMP_HEADER} must be Unix seconds",
                              reason="TIMESTAMP_INVALID")
    if abs(now - int(timestamp)) > WINDOW_SECONDS:
        raise Unauthenticated(f"{TIMESTAMP_HEADER} is more than {WINDOW_SECONDS} s from now",
                              reason="TIMESTAMP_OUT_OF_WINDOW")
    if not signature.isascii() or not hmac.compare_digest(sign(secret, timestamp, body),
                                                          signature.strip().lower()):
        raise Unauthenticated("the signature does not match the body",
                              reason="SIGNATURE_INVALID")


# --- one fact -------------------------------------------------------------------------------


def _text(fact: Mapping[str, Any], name: str, *, max_length: int = MAX_ID_LENGTH) -> str:
    value = fact.get(name)
    if value is None or value == "":
        raise InvalidArgument(f"{name} is required", field=name, reason="FIELD_REQUIRED")
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string", field=name, reason="FIELD_TYPE_INVALID")
    value = value.strip()
    if not value:
        raise InvalidArgument(f"{name} is required", field=name, reason="FIELD_REQUIRED")
    if len(value) > max_length:
        raise InvalidArgument(f"{name} must be at most {max_length} characters", field=name,
                              reason="FIELD_TOO_LONG")
    return value


def _cents(fact: Mapping[str, Any], name: str) -> int:
    value = fact.get(name)
    if value is None:
        raise InvalidArgument(f"{name} is required", field=name, reason="FIELD_REQUIRED")
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"{name} must be an integer", field=name,
                              reason="FIELD_TYPE_INVALID")
    if not 0 < value < 2**62:
        raise InvalidArgument(f"{name} must be positive", field=name, reason="FIELD_OUT_OF_RANGE")
    return value


def _time(fact: Mapping[str, Any], name: str) -> Timestamp | None:
    value = fact.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be an RFC 3339 date-time string", field=name,
                              reason="FIELD_TYPE_INVALID")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidArgument(f"{name} must be an RFC 3339 date-time", field=name,
                              reason="FIELD_TYPE_INVALID") from None
    if moment.tzinfo is None:
        raise InvalidArgument(f"{name} must carry a UTC offset", field=name,
                              reason="FIELD_TYPE_INVALID")
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _bool(fact: Mapping[str, Any], name: str) -> bool:
    value = fact.get(name)
    if not isinstance(value, bool):
        raise InvalidArgument(f"{name} must be true or false", field=name,
                              reason="FIELD_TYPE_INVALID" if value is not None
                              else "FIELD_REQUIRED")
    return value


@dataclass(frozen=True)
class Fact:
    event_id: str
    body: Mapping[str, Any]
    # The shopper's account id, resolved (created when new) only once the fact is valid.
    account: Callable[[], Awaitable[str]]


Applier = Callable[[Upstreams, Fact], Awaitable[bool]]


async def _followed(upstreams: Upstreams, fact: Fact) -> bool:
    request = membership_pb.FollowShopRequest(
        request_id=f"mkt:{fact.event_id}", shop_id=_text(fact.body, "shop_id"),
        channel="marketplace")
    request.account_id = await fact.account()
    await upstreams.membership.FollowShop(request)
    return False


async def _unfollowed(upstreams: Upstreams, fact: Fact) -> bool:
    request = membership_pb.UnfollowShopRequest(
        request_id=f"mkt:{fact.event_id}", shop_id=_text(fact.body, "shop_id"))
    request.account_id = await fact.account()
    await upstreams.membership.UnfollowShop(request)
    return False


async def _cart(upstreams: Upstreams, fact: Fact) -> bool:
    request = membership_pb.RecordCartItemAddedRequest(
        event_id=fact.event_id, shop_id=_text(fact.body, "shop_id"),
        sku_id=_text(fact.body, "sku_id"))
    if (added := _time(fact.body, "add_time")) is not None:
        request.add_time.CopyFrom(added)
    request.account_id = await fact.account()
    return (await upstreams.membership.RecordCartItemAdded(request)).duplicate


async def _paid(upstreams: Upstreams, fact: Fact) -> bool:
    request = membership_pb.RecordOrderPaidRequest(
        event_id=fact.event_id, shop_id=_text(fact.body, "shop_id"),
        order_id=_text(fact.body, "order_id"),
        paid_cents=_cents(fact.body, "paid_cents"))
    if (paid := _time(fact.body, "paid_time")) is not None:
        request.paid_time.CopyFrom(paid)
    if (window := _time(fact.body, "return_window_end_time")) is not None:
        request.return_window_end_time.CopyFrom(window)
    request.account_id = await fact.account()
    return (await upstreams.membership.RecordOrderPaid(request)).duplicate


async def _refunded(upstreams: Upstreams, fact: Fact) -> bool:
    request = membership_pb.RecordOrderRefundedRequest(
        event_id=fact.event_id, shop_id=_text(fact.body, "shop_id"),
        order_id=_text(fact.body, "order_id"),
        refund_id=_text(fact.body, "refund_id"),
        refunded_cents=_cents(fact.body, "refunded_cents"))
    if (refunded := _time(fact.body, "refund_time")) is not None:
        request.refund_time.CopyFrom(refunded)
    request.account_id = await fact.account()
    return (await upstreams.membership.RecordOrderRefunded(request)).duplicate


async def _status(upstreams: Upstreams, fact: Fact) -> bool:
    request = membership_pb.RecordAccountStatusRequest(
        event_id=fact.event_id,
        abnormal=_bool(fact.body, "abnormal"))
    if (occurred := _time(fact.body, "occur_time")) is not None:
        request.occur_time.CopyFrom(occurred)
    request.account_id = await fact.account()
    return (await upstreams.membership.RecordAccountStatus(request)).duplicate


async def _activity(upstreams: Upstreams, fact: Fact) -> bool:
    request = membership_pb.RecordAccountActivityRequest(
        event_id=fact.event_id)
    if (active := _time(fact.body, "last_active_time")) is not None:
        request.last_active_time.CopyFrom(active)
    request.account_id = await fact.account()
    return (await upstreams.membership.RecordAccountActivity(request)).duplicate


FACT_TYPES: dict[str, Applier] = {
    "shop_followed": _followed,
    "shop_unfollowed": _unfollowed,
    "cart_item_added": _cart,
    "order_paid": _paid,
    "order_refunded": _refunded,
    "account_status_changed": _status,
    "account_activity": _activity,
}
# Follows carry no duplicate flag of their own: the first answer is remembered in Redis.
_REMEMBERED = {"shop_followed", "shop_unfollowed"}


def _rejected(index: int, event_id: str, error: DomainError) -> dict[str, Any]:
    result: dict[str, Any] = {
        "index": index, "event_id": event_id, "status": "rejected", "reason": error.reason,
        "message": error.message, "retryable": error.code in _RETRYABLE}
    if "field" in error.metadata:
        result["field"] = error.metadata["field"]
    return result


async def _apply(request: web.Request, index: int, raw: Any) -> dict[str, Any]:
    event_id = raw.get("event_id") if isinstance(raw, dict) else None
    shown_id = event_id if isinstance(event_id, str) else ""
    try:
        if not isinstance(raw, dict):
            raise InvalidArgument("a fact must be a JSON object", field=f"events[{index}]",
                                  reason="FACT_INVALID")
        event_id = _text(raw, "event_id")
        kind = _text(raw, "type", max_length=64)
        applier = FACT_TYPES.get(kind)
        if applier is None:
            raise InvalidArgument(f"type must be one of {', '.join(FACT_TYPES)}", field="type",
                                  reason="FACT_TYPE_UNKNOWN")
        upstreams = request.app[UPSTREAMS]
        marketplace_account = _text(raw, "marketplace_account_id", max_length=128)

        async def account() -> str:
            reply = await upstreams.identity.EnsureAccount(identity_pb.EnsureAccountRequest(
                request_id=f"mkt-account:{marketplace_account}",
                marketplace_account_id=marketplace_account))
            return reply.account.account_id

        try:
            duplicate = await applier(upstreams, Fact(event_id, raw, account))
        except grpc.aio.AioRpcError as error:
            raise remote_error(error) from None
        if kind in _REMEMBERED:
            replays = request.app[OPEN_PLATFORM].replays
            duplicate = await replays.claim("marketplace", f"{kind}:{event_id}") is not None
            if not duplicate:
                await replays.store("marketplace", f"{kind}:{event_id}", b"applied")
    except DomainError as error:
        if error.code in _RETRYABLE:
            log.warning("marketplace_fact_failed", event_id=shown_id, reason=error.reason)
        return _rejected(index, shown_id, error)
    except Exception:  # one fact's unexpected failure never fails the rest of the batch
        log.exception("marketplace_fact_error", event_id=shown_id)
        return {"index": index, "event_id": shown_id, "status": "rejected",
                "reason": "INTERNAL", "message": "internal error; deliver the fact again",
                "retryable": True}
    return {"index": index, "event_id": event_id,
            "status": "duplicate" if duplicate else "accepted"}


async def receive_facts(request: web.Request, secret: bytes) -> web.Response:
    """Verify the batch's signature, then apply its facts in order, each on its own."""
    raw = await read_body_bytes(request, MAX_BODY_BYTES)  # every chunk; 413 past the limit
    verify(secret, request.headers.get(TIMESTAMP_HEADER),
           request.headers.get(SIGNATURE_HEADER), raw, system_clock().timestamp())
    try:
        payload = json.loads(raw)
    except ValueError:
        raise InvalidArgument("body is not valid JSON", field="body",
                              reason="INVALID_JSON") from None
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list):
        raise InvalidArgument("body must be an object with an events array", field="events",
                              reason="FIELD_TYPE_INVALID")
    if len(events) > MAX_FACTS:
        raise InvalidArgument(f"at most {MAX_FACTS} facts per batch", field="events",
                              reason="FIELD_TOO_LONG")
    results = [await _apply(request, index, fact) for index, fact in enumerate(events)]
    counts = {status: sum(1 for r in results if r["status"] == status)
              for status in ("accepted", "duplicate", "rejected")}
    return web.json_response({"results": results, **counts})


FACT_SCHEMA: Schema = obj({
    "event_id": string("the marketplace's event id; a re-delivery is recognised by it",
                       maxLength=MAX_ID_LENGTH),
    "type": string(enum=list(FACT_TYPES)),
    "marketplace_account_id": string("the shopper's marketplace account"),
    "shop_id": string("follow, unfollow, cart, order and refund facts"),
    "sku_id": string("cart_item_added"),
    "add_time": string("cart_item_added", format="date-time"),
    "order_id": string("order_paid, order_refunded"),
    "paid_cents": integer("order_paid", minimum=1),
    "paid_time": string("order_paid", format="date-time"),
    "return_window_end_time": string("order_paid: points stay pending until then",
                                     format="date-time"),
    "refund_id": string("order_refunded"),
    "refunded_cents": integer("order_refunded", minimum=1),
    "refund_time": string("order_refunded", format="date-time"),
    "abnormal": {"type": "boolean", "description": "account_status_changed"},
    "occur_time": string("account_status_changed", format="date-time"),
    "last_active_time": string("account_activity", format="date-time"),
}, required=["event_id", "type", "marketplace_account_id"])

RESULT_SCHEMA: Schema = obj({
    "index": integer("the fact's position in the batch"), "event_id": string(),
    "status": string(enum=["accepted", "duplicate", "rejected"]),
    "reason": string("rejected: UPPER_SNAKE reason"), "field": string("rejected: the field"),
    "message": string(), "retryable": {"type": "boolean",
                                       "description": "rejected: deliver again later"}})


def routes(table: RouteTable) -> None:
    """Register the facts endpoint; it verifies with the application's SECRET."""

    async def handler(request: web.Request) -> web.Response:
        return await receive_facts(request, request.app[SECRET])

    table.add(Route(
        "POST", PATH, handler,
        "Marketplace facts (follows, carts, orders, refunds, account status and activity), "
        f"at most {MAX_FACTS} per batch, signed: {TIMESTAMP_HEADER} (Unix seconds, within "
        f"{WINDOW_SECONDS} s) and {SIGNATURE_HEADER} = hex HMAC-SHA256(secret, "
        "'<timestamp>.' + raw body). Each fact is answered on its own; a re-delivered event "
        "id is a duplicate.", "marketplace", "marketplace",
        obj({"results": array(RESULT_SCHEMA), "accepted": integer(),
             "duplicate": integer(), "rejected": integer()}),
        body=obj({"events": array(FACT_SCHEMA)}, required=["events"]),
        errors=(400, 401)))
