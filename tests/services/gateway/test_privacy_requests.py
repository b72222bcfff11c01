"""Privacy requests over real HTTP with every service in-process: a member's data exported as
one file (storefront and console), then erased or pseudonymised on cancellation in every
service, with the brand's erasure report saying what went where and when."""

from __future__ import annotations

import json
from typing import Any

from brandclub.messaging.v1 import messaging_service_pb2 as messaging_pb
from brandclub.messaging.v1 import messaging_service_pb2_grpc as messaging_grpc
from libs.testing import ContractChannel
from tests.services.gateway.conftest import Suite
from tests.services.gateway.console_helpers import MESSAGE_TEMPLATE, call, console
from tests.services.gateway.helpers import bearer, eventually, sign_in_spec

PHONE = "13812345678"
MASKED_PHONE = "138****5678"
EVERYONE = {"group": {"operator": "RULE_GROUP_OPERATOR_AND", "rules": [
    {"condition": {"field": "tier", "operator": "gte", "number": 0}}]}}
# Sections that must hold the member's records once the scenario below has run.
EXPECTED_SECTIONS = {
    "identity": {"account", "phone"},
    "membership": {"memberships", "consents", "follows", "segment_snapshots"},
    "benefits": {"points_balance", "points_ledger"},
    "engagement": {"sign_ins", "rewards"},
    "messaging": {"inbox", "consents", "deliveries", "sandbox_deliveries", "campaigns"},
}


async def _member_everywhere(suite: Suite) -> dict[str, Any]:
    """A card member with a phone, a sign-in (points), a segment snapshot, a campaign in the
    message box, an SMS opt-out and an SMS through the sandbox channel."""
    brand_id, shop_id = await suite.brand_and_shop()
    account_id, token = await suite.shopper("pin-privacy")
    me = bearer(token)
    headers = await console(suite, brand_id)
    await call(suite, "POST", f"/storefront/v1/shops/{shop_id}/follow", me)
    await call(suite, "POST", f"/storefront/v1/brands/{brand_id}/card/open", me, {
        "terms_version": "2024-06", "purposes": ["profile"], "phone": PHONE})
    activity = (await call(suite, "POST", "/console/v1/activities", headers,
                           {"spec": sign_in_spec(), "publish": True}))["activity"]
    await call(suite, "POST", f"/storefront/v1/brands/{brand_id}/activities/"
               f"{activity['activity_id']}/sign-in", me)
    segment = (await call(suite, "POST", "/console/v1/segments", headers,
                          {"name": "everyone", "rule": EVERYONE}))["segment"]
    snapshot = (await call(suite, "POST", f"/console/v1/segments/{segment['segment_id']}"
                           "/snapshots", headers))["snapshot"]
    template = (await call(suite, "POST", "/console/v1/templates", headers,
                           {"template": MESSAGE_TEMPLATE}))["template"]
    campaign = (await call(suite, "POST", "/console/v1/campaigns", headers, {"campaign": {
        "name": "spring", "snapshot_id": snapshot["snapshot_id"],
        "template_id": template["template_id"], "channel": "CHANNEL_INBOX",
        "variables": {"offer": "20% off"}}}))["campaign"]
    await call(suite, "POST", f"/console/v1/campaigns/{campaign['campaign_id']}/launch", headers)
    await call(suite, "PUT", f"/console/v1/members/{account_id}/consents", headers, {
        "channel": "CHANNEL_SMS", "purpose": "PURPOSE_MARKETING", "granted": False,
        "source": "hotline"})
    await call(suite, "PUT", "/console/v1/channels/sms", headers, {
        "provider": "PROVIDER_SANDBOX", "settings": {"sign_name": "Acme"}, "credentials": {}})
    sms = (await call(suite, "POST", "/console/v1/templates", headers, {"template": {
        "channel": "CHANNEL_SMS", "purpose": "PURPOSE_SERVICE", "name": "code",
        "body": "{{brand_name}}: your code is {{code}}", "provider_template_code": "SMS_1",
        "provider_params": {"code": "{{code}}"}, "custom_variables": ["code"]}}))["template"]
    # SendMessage is the operator's (contract), not the gateway's.
    async with ContractChannel(suite.addresses["MESSAGING_ADDR"], peer="messaging") as channel:
        await messaging_grpc.MessagingServiceStub(channel).SendMessage(
            messaging_pb.SendMessageRequest(request_id="t:send:privacy", brand_id=brand_id,
                                            account_id=account_id,
                                            template_id=sms["template_id"],
                                            variables={"code": "42"}))
    return {"brand_id": brand_id, "account_id": account_id, "me": me, "console": headers,
            "snapshot_id": snapshot["snapshot_id"], "campaign_id": campaign["campaign_id"]}


def _held(document: dict[str, Any]) -> dict[str, set[str]]:
    """service -> the sections that hold at least one record."""
    return {service: {name for name, section in part["sections"].items()
                      if section["records"]}
            for service, part in document["services"].items()}


async def _export_when_complete(suite: Suite, member: dict[str, Any]) -> dict[str, Any]:
    """The shopper's file once the background work (rewards, campaign, SMS) has landed."""
    document: dict[str, Any] = {}

    async def complete() -> bool:
        nonlocal document
        document = await call(suite, "GET", f"/storefront/v1/brands/{member['brand_id']}/my-data",
                              member["me"])
        held = _held(document)
        return all(expected <= held.get(service, set())
                   for service, expected in EXPECTED_SECTIONS.items())

    completed = await eventually(complete)
    assert completed, {service: sorted(names) for service, names in _held(document).items()}
    return document


async def test_member_data_export_covers_every_service_and_masks(full_suite: Suite) -> None:
    """The shopper's file has a section per kind of record in every service, each filled by
    this scenario, with generated_at; the phone never appears (only that one is on file) and
    linked ids are masked; the console's file for the member is the same; a shopper who never
    joined is not the console's to export, and another brand's console cannot read ours."""
    suite = full_suite
    member = await _member_everywhere(suite)
    document = await _export_when_complete(suite, member)
    assert document["format"] == "brandclub.member-data-export/1"
    assert document["brand_id"] == member["brand_id"]
    assert document["account_id"] == member["account_id"]
    assert document["generated_at"]
    assert list(document["services"]) == ["identity", "membership", "benefits", "engagement",
                                          "messaging"]
    text = json.dumps(document)
    assert PHONE not in text and "pin-privacy" not in text
    identity = document["services"]["identity"]["sections"]
    assert identity["phone"]["records"][0]["phone_on_file"] is True
    assert all("..." in r["external_id"] or r["external_id"] == "****"
               for r in identity["linked_identities"]["records"])
    assert int(document["services"]["benefits"]["sections"]["points_balance"]["records"][0][
        "available"]) == 5

    from_console = await call(suite, "GET", f"/console/v1/members/{member['account_id']}"
                              "/data-export", member["console"])
    assert _held(from_console) == _held(document)
    stranger, _ = await suite.shopper("pin-stranger")
    refused = await call(suite, "GET", f"/console/v1/members/{stranger}/data-export",
                         member["console"], status=404)
    assert refused["error"]["reason"] == "MEMBER_NOT_FOUND"
    other_brand, _ = await suite.brand_and_shop("Other")
    await call(suite, "GET", f"/console/v1/members/{member['account_id']}/data-export",
               await console(suite, other_brand), status=404)
    await call(suite, "GET", f"/storefront/v1/brands/{member['brand_id']}/my-data", {},
               status=401)
    await call(suite, "GET", "/storefront/v1/brands/no-such-brand/my-data", member["me"],
               status=404)


async def test_cancellation_erases_everywhere_and_the_report_says_so(full_suite: Suite) -> None:
    """After the member cancels, the brand's snapshot, campaign recipient list and sandbox
    deliveries no longer carry them, and the erasure report lists, per service, each table
    erased or pseudonymised under the cancellation, complete within the 24-hour bound."""
    suite = full_suite
    member = await _member_everywhere(suite)
    await _export_when_complete(suite, member)
    headers, account_id = member["console"], member["account_id"]
    report_url = f"/console/v1/members/{account_id}/erasure-report"
    assert (await call(suite, "GET", report_url, headers))["requests"] == []

    await call(suite, "POST", f"/storefront/v1/brands/{member['brand_id']}/card/cancel",
               member["me"], {"reason": "privacy"})
    report: dict[str, Any] = {}

    async def complete() -> bool:
        nonlocal report
        report = await call(suite, "GET", report_url, headers)
        return bool(report["requests"]) and report["requests"][0]["status"] == "complete"

    assert await eventually(complete), report
    [request] = report["requests"]
    assert request["pending_services"] == [] and request["completed_at"]
    assert set(request["services"]) == {"membership", "benefits", "engagement", "messaging"}
    removed = {(service, r["table"], r["action"]): r["rows"]
               for service, part in request["services"].items() for r in part["removals"]}
    assert removed[("membership", "segment_snapshot_members", "erased")] == 1
    assert removed[("membership", "members", "erased")] == 1
    assert removed[("messaging", "campaign_recipients", "pseudonymised")] == 1
    assert removed[("messaging", "sandbox_deliveries", "erased")] == 1
    assert removed[("messaging", "outbound_messages", "pseudonymised")] >= 2
    assert removed[("engagement", "sign_ins", "pseudonymised")] == 1

    snapshot_members = await call(suite, "GET", f"/console/v1/segment-snapshots/"
                                  f"{member['snapshot_id']}/members?page_size=50", headers)
    assert account_id not in json.dumps(snapshot_members)
    recipients = await call(suite, "GET", f"/console/v1/campaigns/{member['campaign_id']}"
                            "/recipients?page_size=50", headers)
    assert recipients["recipients"] and account_id not in json.dumps(recipients)
    sandbox = await call(suite, "GET", "/console/v1/sandbox-deliveries?page_size=50", headers)
    assert sandbox["deliveries"] and MASKED_PHONE not in json.dumps(sandbox)

    after = await call(suite, "GET", f"/storefront/v1/brands/{member['brand_id']}/my-data",
                       member["me"])
    held = _held(after)
    assert "segment_snapshots" not in held["membership"]
    assert {"campaigns", "deliveries", "inbox"}.isdisjoint(held["messaging"])
    assert "points_ledger" in held["benefits"]  # frozen, kept for a rejoin (and accounting)
    again = await call(suite, "GET", report_url, headers)
    assert again["requests"][0]["services"] == request["services"]
