"""Provider delivery receipts over real HTTP with messaging in-process: a signed receipt
turns a sandbox-sent SMS into DELIVERED; a bad signature, a stale timestamp or another brand's
path changes nothing; malformed input is a 400, never a 5xx."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

from brandclub.identity.v1 import identity_service_pb2 as identity_pb
from brandclub.messaging.v1 import messaging_service_pb2 as messaging_pb
from brandclub.messaging.v1 import messaging_service_pb2_grpc as messaging_grpc
from libs.testing import ContractChannel
from tests.services.gateway.conftest import Suite
from tests.services.gateway.console_helpers import call, console

SECRET = "receipt-secret-for-tests-0123456789abcdef"
OTHER_SECRET = "another-brands-receipt-secret-0123456789"


def signed(body: bytes, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    signature = hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                         hashlib.sha256).hexdigest()
    return {"X-Brandclub-Timestamp": timestamp, "X-Brandclub-Signature": signature,
            "Content-Type": "application/json"}


async def post(suite: Suite, path: str, body: bytes, headers: dict[str, str],
               status: int) -> Any:
    async with suite.http.post(path, data=body, headers=headers) as response:
        payload = await response.json()
        assert response.status == status, (response.status, payload)
        return payload


def receipts(*items: dict[str, Any]) -> bytes:
    return json.dumps({"receipts": list(items)}).encode()


async def sms_brand(suite: Suite, name: str, secret: str) -> tuple[str, str, dict[str, str]]:
    """A brand with a sandbox SMS channel carrying a receipt secret, and an SMS template."""
    brand_id, _ = await suite.brand_and_shop(name)
    headers = await console(suite, brand_id)
    config = (await call(suite, "PUT", "/console/v1/channels/sms", headers, {
        "provider": "PROVIDER_SANDBOX", "settings": {"sign_name": name},
        "credentials": {"receipt_secret": secret}}))["config"]
    assert config["receipt_webhook_path"] == (
        f"/webhooks/v1/brands/{brand_id}/channels/sms/receipts")
    assert secret not in json.dumps(config)
    template = (await call(suite, "POST", "/console/v1/templates", headers, {"template": {
        "channel": "CHANNEL_SMS", "purpose": "PURPOSE_SERVICE", "name": "code",
        "body": "{{brand_name}}: your code is {{code}}",
        "provider_template_code": "SMS_1", "provider_params": {"code": "{{code}}"},
        "custom_variables": ["code"]}}))["template"]
    return brand_id, template["template_id"], headers


async def sent_sms(suite: Suite, brand_id: str, template_id: str, headers: dict[str, str],
                   marketplace_id: str) -> dict[str, Any]:
    """An SMS sent through the sandbox (the dispatcher runs in messaging's background)."""
    account_id, _ = await suite.shopper(marketplace_id)
    await suite.identity.StorePhone(identity_pb.StorePhoneRequest(
        request_id=f"t:phone:{marketplace_id}", account_id=account_id, phone="13812345678"))
    # SendMessage is the operator's (contract): the gateway's own channel may not call it.
    async with ContractChannel(suite.addresses["MESSAGING_ADDR"], peer="messaging") as channel:
        message = (await messaging_grpc.MessagingServiceStub(channel).SendMessage(
            messaging_pb.SendMessageRequest(request_id=f"t:send:{marketplace_id}",
                                            brand_id=brand_id, account_id=account_id,
                                            template_id=template_id, variables={"code": "42"})
        )).message
    for _ in range(200):
        got = (await call(suite, "GET", f"/console/v1/messages/{message.message_id}",
                          headers))["message"]
        if got["status"] == "MESSAGE_STATUS_SENT":
            assert got["provider_message_id"]
            return dict(got)
        await asyncio.sleep(0.1)
    raise AssertionError(f"message never sent: {got}")


async def status_of(suite: Suite, message: dict[str, Any], headers: dict[str, str]) -> str:
    got = await call(suite, "GET", f"/console/v1/messages/{message['message_id']}", headers)
    return str(got["message"]["status"])


async def test_signed_receipt_delivers_and_bad_ones_change_nothing(full_suite: Suite) -> None:
    """A bad signature, a stale timestamp, missing headers and another brand's path are 401
    and leave the message SENT; a signed receipt makes it DELIVERED; sending it again is a
    duplicate; an unknown id is rejected on its own."""
    suite = full_suite
    brand_id, template_id, headers = await sms_brand(suite, "Acme", SECRET)
    other_id, _, _ = await sms_brand(suite, "Other", OTHER_SECRET)
    message = await sent_sms(suite, brand_id, template_id, headers, "pin-receipt")
    path = f"/webhooks/v1/brands/{brand_id}/channels/sms/receipts"
    body = receipts({"provider_message_id": message["provider_message_id"],
                     "status": "delivered", "provider_time": "2026-03-02T02:00:05Z"})

    wrong = await post(suite, path, body, signed(body, OTHER_SECRET), 401)
    assert wrong["error"]["reason"] == "RECEIPT_SIGNATURE_INVALID"
    stale = await post(suite, path, body, signed(body, at=time.time() - 600), 401)
    assert stale["error"]["reason"] == "RECEIPT_TIMESTAMP_STALE"
    await post(suite, path, body, {"Content-Type": "application/json"}, 401)
    tampered = body.replace(b"delivered", b"failed")
    await post(suite, path, tampered, signed(body), 401)
    # The other brand signs correctly for its own path: our message is not its message.
    other_path = f"/webhooks/v1/brands/{other_id}/channels/sms/receipts"
    theirs = await post(suite, other_path, body, signed(body, OTHER_SECRET), 200)
    assert theirs["results"][0]["outcome"] == "rejected"
    assert theirs["results"][0]["reason"] == "MESSAGE_NOT_FOUND"
    assert await status_of(suite, message, headers) == "MESSAGE_STATUS_SENT"

    accepted = await post(suite, path, body, signed(body), 200)
    assert accepted["results"] == [{"provider_message_id": message["provider_message_id"],
                                    "outcome": "accepted", "reason": "",
                                    "message_id": message["message_id"]}]
    assert accepted["accepted"] == 1
    assert await status_of(suite, message, headers) == "MESSAGE_STATUS_DELIVERED"
    again = receipts({"provider_message_id": message["provider_message_id"],
                      "status": "failed", "error_code": "LATE"},
                     {"provider_message_id": "no-such-id", "status": "delivered"})
    answer = await post(suite, path, again, signed(again), 200)
    assert [(r["outcome"], r["reason"]) for r in answer["results"]] == [
        ("duplicate", ""), ("rejected", "MESSAGE_NOT_FOUND")]
    assert (answer["accepted"], answer["duplicate"], answer["rejected"]) == (0, 1, 1)
    assert await status_of(suite, message, headers) == "MESSAGE_STATUS_DELIVERED"


async def test_failed_receipt_and_malformed_input(full_suite: Suite) -> None:
    """A signed failure receipt makes the message FAILED with the provider's code; malformed
    bodies and paths are 400 naming the field; a channel without a secret is 401."""
    suite = full_suite
    brand_id, template_id, headers = await sms_brand(suite, "Acme", SECRET)
    message = await sent_sms(suite, brand_id, template_id, headers, "pin-failed")
    path = f"/webhooks/v1/brands/{brand_id}/channels/sms/receipts"
    for raw, field in [(b"not json", "body"), (b"{}", "receipts"),
                       (receipts({"provider_message_id": "x", "status": "lost"}),
                        "receipts[0].status"),
                       (receipts({"provider_message_id": "", "status": "failed"}),
                        "receipts[0].provider_message_id"),
                       (receipts({"provider_message_id": "x", "status": "failed",
                                  "provider_time": "yesterday"}),
                        "receipts[0].provider_time"),
                       (json.dumps({"receipts": [[1]]}).encode(), "receipts[0]")]:
        bad = await post(suite, path, raw, signed(raw), 400)
        assert bad["error"]["details"]["field"] == field, (raw, bad)
    assert await status_of(suite, message, headers) == "MESSAGE_STATUS_SENT"
    body = receipts({"provider_message_id": message["provider_message_id"],
                     "status": "failed", "error_code": "UNDELIVERABLE"})
    await post(suite, f"/webhooks/v1/brands/{brand_id}/channels/fax/receipts", body,
               signed(body), 400)
    await post(suite, f"/webhooks/v1/brands/{brand_id}/channels/wechat/receipts", body,
               signed(body), 401)
    answer = await post(suite, path, body, signed(body), 200)
    assert answer["results"][0]["outcome"] == "accepted"
    got = (await call(suite, "GET", f"/console/v1/messages/{message['message_id']}",
                      headers))["message"]
    assert (got["status"], got["reason"]) == ("MESSAGE_STATUS_FAILED", "UNDELIVERABLE")
