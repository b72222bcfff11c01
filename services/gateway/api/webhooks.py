"""Provider delivery receipts: a brand's SMS or WeChat provider (or the relay in front of it)
posts signed receipts for the messages it accepted.

Authentication: `X-Brandclub-Timestamp` (Unix seconds, within 5 minutes) and
`X-Brandclub-Signature` = lower-case hex HMAC-SHA256 of `<timestamp>.` followed by the raw body,
keyed with the channel's `receipt_secret` credential (set by the merchant as a write-only
credential of the channel). The gateway never sees the secret: it hands the raw body, timestamp
and signature to messaging, which checks them and records nothing unless they hold. Each receipt
is answered on its own: accepted, duplicate (the message already had a final status) or
rejected (unknown to this brand and channel, or not sent yet).
"""

from __future__ import annotations

import re

import grpc
from aiohttp import web

from brandclub.messaging.v1 import messaging_service_pb2 as messaging_pb
from libs.errors import InvalidArgument, Unauthenticated
from libs.grpc_client import remote_error
from services.gateway.api.app_keys import UPSTREAMS
from services.gateway.api.http_common import read_body_bytes
from services.gateway.api.routes import Route, RouteTable, Schema, array, integer, obj, string

PATH = "/webhooks/v1/brands/{brand_id}/channels/{channel}/receipts"
SIGNATURE_HEADER = "X-Brandclub-Signature"
TIMESTAMP_HEADER = "X-Brandclub-Timestamp"
MAX_BODY_BYTES = 1024 * 1024
_CHANNELS = {"sms": messaging_pb.CHANNEL_SMS, "wechat": messaging_pb.CHANNEL_WECHAT}
_OUTCOMES = {messaging_pb.RECEIPT_OUTCOME_ACCEPTED: "accepted",
             messaging_pb.RECEIPT_OUTCOME_DUPLICATE: "duplicate",
             messaging_pb.RECEIPT_OUTCOME_REJECTED: "rejected"}
_BRAND_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_HEX = re.compile(r"[0-9a-fA-F]{64}")

RECEIPT_SCHEMA: Schema = obj({
    "provider_message_id": string("the id the provider returned when it accepted the message"),
    "status": string(enum=["delivered", "failed"]),
    "provider_time": string("when the provider saw the outcome", format="date-time"),
    "error_code": string("the provider's error code when not delivered"),
}, ["provider_message_id", "status"])
RESULT_SCHEMA: Schema = obj({
    "provider_message_id": string(), "outcome": string(enum=sorted(_OUTCOMES.values())),
    "reason": string("why a receipt was rejected, e.g. MESSAGE_NOT_FOUND"),
    "message_id": string("our message id")})


async def receive_receipts(request: web.Request) -> web.Response:
    brand_id = request.match_info["brand_id"]
    channel = request.match_info["channel"].lower()
    if not _BRAND_ID.fullmatch(brand_id):
        raise InvalidArgument("brand_id is not a brand id", field="brand_id",
                              reason="FIELD_TYPE_INVALID")
    if channel not in _CHANNELS:
        raise InvalidArgument(f"channel must be one of {', '.join(sorted(_CHANNELS))}",
                              field="channel", reason="FIELD_ENUM_INVALID")
    raw = await read_body_bytes(request, MAX_BODY_BYTES)  # every chunk; 413 past the limit
    timestamp = request.headers.get(TIMESTAMP_HEADER, "").strip()
    signature = request.headers.get(SIGNATURE_HEADER, "").strip()
    if not timestamp or not signature:
        raise Unauthenticated(f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required",
                              reason="SIGNATURE_MISSING")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise Unauthenticated(f"{TIMESTAMP_HEADER} must be Unix seconds",
                              reason="TIMESTAMP_INVALID")
    if not _HEX.fullmatch(signature):
        raise Unauthenticated(f"{SIGNATURE_HEADER} must be a hex HMAC-SHA256",
                              reason="SIGNATURE_INVALID")
    try:
        reply = await request.app[UPSTREAMS].messaging.RecordSignedDeliveryReceipts(
            messaging_pb.RecordSignedDeliveryReceiptsRequest(
                brand_id=brand_id, channel=_CHANNELS[channel], body=raw, timestamp=timestamp,
                signature=signature))
    except grpc.aio.AioRpcError as error:
        raise remote_error(error) from None
    results = [{"provider_message_id": r.provider_message_id, "outcome": _OUTCOMES[r.outcome],
                "reason": r.reason, "message_id": r.message_id} for r in reply.results]
    counts = {name: sum(1 for r in results if r["outcome"] == name)
              for name in _OUTCOMES.values()}
    return web.json_response({"results": results, **counts})


def routes(table: RouteTable) -> None:
    table.add(Route(
        "POST", PATH, receive_receipts,
        "Provider delivery receipts for a brand's sms or wechat channel, signed: "
        f"{TIMESTAMP_HEADER} (Unix seconds, within 300 s) and {SIGNATURE_HEADER} = hex "
        "HMAC-SHA256(the channel's receipt_secret, '<timestamp>.' + raw body). Each receipt is "
        "answered accepted, duplicate or rejected.", "webhooks", "receipts",
        obj({"results": array(RESULT_SCHEMA), "accepted": integer(), "duplicate": integer(),
             "rejected": integer()}),
        body=obj({"receipts": array(RECEIPT_SCHEMA)}, ["receipts"]), errors=(400, 401)))
