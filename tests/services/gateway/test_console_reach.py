"""Console API for reaching members over real HTTP: segments and snapshots, dashboards,
channels, policy and consent, templates, campaigns and journeys, each scoped to the merchant
token's brand; and the shopper's message-box unread count."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.gateway.api import console_reach
from services.gateway.api.routes import Route, RouteTable
from services.gateway.main import route_table
from tests.services.gateway.conftest import Suite
from tests.services.gateway.console_helpers import MESSAGE_TEMPLATE, call, console

RULE: dict[str, Any] = {"group": {"operator": "RULE_GROUP_OPERATOR_AND", "rules": [
    {"condition": {"field": "tier", "operator": "gte", "number": 0}},
    {"group": {"operator": "RULE_GROUP_OPERATOR_OR", "rules": [
        {"condition": {"field": "tier", "operator": "eq", "number": 0}},
        {"condition": {"field": "order_count", "operator": "gte", "number": 5}}]}}]}}


def _reach_routes() -> list[Route]:
    table = RouteTable("reach", "0")
    console_reach.routes(table)
    return table.routes


async def report_when(suite: Suite, headers: dict[str, str], campaign_id: str,
                      done: int) -> dict[str, Any]:
    """The campaign's report once `done` messages were delivered (the dispatcher runs in the
    background of the messaging service)."""
    report: dict[str, Any] = {}
    for _ in range(200):
        report = (await call(suite, "GET", f"/console/v1/campaigns/{campaign_id}/report",
                             headers))["report"]
        if int(report.get("delivered", 0)) + int(report.get("read", 0)) >= done:
            return report
        await asyncio.sleep(0.2)
    raise AssertionError(f"campaign never delivered {done}: {report}")


async def test_merchant_segments_a_campaign_and_reads_its_report(full_suite: Suite) -> None:
    """A merchant previews a nested rule, saves and snapshots it, pages the snapshot, creates
    a message-box template and campaign, launches it and reads a report with every member
    delivered; the shopper then sees one unread message."""
    suite = full_suite
    brand_id, shop_id = await suite.brand_and_shop()
    members = [await suite.member(shop_id, f"pin-{i}") for i in range(3)]
    _, other_shop = await suite.brand_and_shop("Other")
    await suite.member(other_shop, "pin-elsewhere")
    headers = await console(suite, brand_id)

    preview = await call(suite, "POST", "/console/v1/segments/preview", headers, {"rule": RULE})
    assert int(preview["member_count"]) == 3
    segment = (await call(suite, "POST", "/console/v1/segments", headers,
                          {"name": "everyone LV0", "rule": RULE}))["segment"]
    await call(suite, "POST", "/console/v1/segments", headers, {"name": "second", "rule": RULE})
    assert segment["rule"]["group"]["rules"][1]["group"]["operator"] == "RULE_GROUP_OPERATOR_OR"
    first = await call(suite, "GET", "/console/v1/segments?page_size=1", headers)
    assert len(first["segments"]) == 1 and first["next_page_token"]
    second = await call(suite, "GET", "/console/v1/segments?page_size=1&page_token="
                        f"{first['next_page_token']}", headers)
    assert {s["segment_id"] for s in first["segments"] + second["segments"]} >= {
        segment["segment_id"]}
    got = await call(suite, "GET", f"/console/v1/segments/{segment['segment_id']}", headers)
    assert got["segment"]["name"] == "everyone LV0"
    count = await call(suite, "GET", f"/console/v1/segments/{segment['segment_id']}/count",
                       headers)
    assert int(count["member_count"]) == 3

    snapshot = (await call(suite, "POST",
                           f"/console/v1/segments/{segment['segment_id']}/snapshots",
                           headers))["snapshot"]
    assert int(snapshot["member_count"]) == 3
    assert (await call(suite, "GET", f"/console/v1/segment-snapshots/{snapshot['snapshot_id']}",
                       headers))["snapshot"]["segment_id"] == segment["segment_id"]
    page = await call(suite, "GET", f"/console/v1/segment-snapshots/{snapshot['snapshot_id']}"
                      "/members?page_size=2", headers)
    rest = await call(suite, "GET", f"/console/v1/segment-snapshots/{snapshot['snapshot_id']}"
                      f"/members?page_size=2&page_token={page['next_page_token']}", headers)
    assert sorted(m["account_id"] for m in page["members"] + rest["members"]) == sorted(members)

    template = (await call(suite, "POST", "/console/v1/templates", headers,
                           {"template": MESSAGE_TEMPLATE}))["template"]
    assert (await call(suite, "GET", f"/console/v1/templates/{template['template_id']}",
                       headers))["template"]["name"] == "spring"
    campaign = (await call(suite, "POST", "/console/v1/campaigns", headers, {"campaign": {
        "name": "spring", "snapshot_id": snapshot["snapshot_id"],
        "template_id": template["template_id"], "channel": "CHANNEL_INBOX",
        "variables": {"offer": "20% off"}}}))["campaign"]
    assert campaign["status"] == "CAMPAIGN_STATUS_DRAFT"
    launched = (await call(suite, "POST", f"/console/v1/campaigns/{campaign['campaign_id']}"
                           "/launch", headers))["campaign"]
    assert launched["status"] != "CAMPAIGN_STATUS_DRAFT"
    report = await report_when(suite, headers, campaign["campaign_id"], 3)
    assert int(report["targeted"]) == 3 and int(report.get("failed", 0)) == 0
    assert report.get("suppressed", {}) == {}
    recipients = await call(suite, "GET", f"/console/v1/campaigns/{campaign['campaign_id']}"
                            "/recipients?page_size=50", headers)
    assert sorted(r["account_id"] for r in recipients["recipients"]) == sorted(members)
    message_id = recipients["recipients"][0]["message"]["message_id"]
    assert (await call(suite, "GET", f"/console/v1/messages/{message_id}",
                       headers))["message"]["campaign_id"] == campaign["campaign_id"]

    _, shopper = await suite.shopper("pin-0")
    unread = await call(suite, "GET", f"/storefront/v1/brands/{brand_id}/messages/unread-count",
                        {"Authorization": f"Bearer {shopper}"})
    assert unread == {"unread_count": 1}


async def test_dashboards_count_the_brands_own_members(suite: Suite) -> None:
    """The overview and today's daily dashboard count this brand's new LV0 members only; a
    refresh recomputes; a range without dates is refused naming the field."""
    brand_id, shop_id = await suite.brand_and_shop()
    for index in range(2):
        await suite.member(shop_id, f"dash-{index}")
    _, other_shop = await suite.brand_and_shop("Other")
    await suite.member(other_shop, "dash-other")
    headers = await console(suite, brand_id)
    overview = (await call(suite, "GET", "/console/v1/dashboards/overview",
                           headers))["overview"]
    assert overview["brand_id"] == brand_id
    assert int(overview.get("lv0_valid", 0)) == 2 and int(overview.get("card_total", 0)) == 0
    zone = (await call(suite, "GET", "/console/v1/brand", headers))["brand"]["time_zone"]
    today = datetime.now(ZoneInfo(zone)).date().isoformat()
    daily = await call(suite, "GET", f"/console/v1/dashboards/daily?start_date={today}"
                       f"&end_date={today}", headers)
    assert daily["time_zone"] == zone
    assert [(d["date"], int(d.get("new_members", 0)), int(d.get("lv0_members", 0)))
            for d in daily["days"]] == [(today, 2, 2)]
    refreshed = await call(suite, "POST", "/console/v1/dashboards/refresh", headers,
                           {"start_date": today, "end_date": today})
    assert int(refreshed.get("refreshed_days", 0)) == 0  # today is never stored
    missing = await call(suite, "GET", f"/console/v1/dashboards/daily?start_date={today}",
                         headers, status=400)
    assert missing["error"]["details"]["field"] == "end_date"
    backwards = await call(suite, "GET", "/console/v1/dashboards/daily?start_date=2026-02-02"
                           "&end_date=2026-01-01", headers, status=400)
    assert backwards["error"]["details"]["field"] == "end_date"


async def test_another_brand_reaches_nothing(full_suite: Suite) -> None:
    """A merchant of brand B can neither read nor change brand A's segments, snapshots,
    templates, campaigns or journeys, nor build a campaign on A's snapshot; B's lists and
    dashboards show B's data only; naming a brand in the body is refused."""
    suite = full_suite
    brand_a, shop_a = await suite.brand_and_shop()
    await suite.member(shop_a, "pin-a")
    brand_b, _ = await suite.brand_and_shop("Other")
    a, b = await console(suite, brand_a), await console(suite, brand_b, "intruder")
    segment = (await call(suite, "POST", "/console/v1/segments", a,
                          {"name": "a", "rule": RULE}))["segment"]["segment_id"]
    snapshot = (await call(suite, "POST", f"/console/v1/segments/{segment}/snapshots",
                           a))["snapshot"]["snapshot_id"]
    template = (await call(suite, "POST", "/console/v1/templates", a,
                           {"template": MESSAGE_TEMPLATE}))["template"]["template_id"]
    campaign = (await call(suite, "POST", "/console/v1/campaigns", a, {"campaign": {
        "name": "a", "snapshot_id": snapshot, "template_id": template,
        "channel": "CHANNEL_INBOX", "variables": {"offer": "x"}}}))["campaign"]["campaign_id"]
    welcome = (await call(suite, "POST", "/console/v1/templates", a, {"template": {
        **MESSAGE_TEMPLATE, "name": "welcome", "body": "Welcome to {{brand_name}}, {{offer}}"}})
               )["template"]["template_id"]
    journey = (await call(suite, "POST", "/console/v1/journeys", a, {"journey": {
        "name": "welcome", "trigger": "JOURNEY_TRIGGER_CARD_OPENED", "steps": [
            {"step_id": "hello", "kind": "JOURNEY_STEP_KIND_SEND", "template_id": welcome,
             "variables": {"offer": "x"}}]}}))["journey"]["journey_id"]

    for method, path in (
            ("GET", f"/console/v1/segments/{segment}"),
            ("GET", f"/console/v1/segments/{segment}/count"),
            ("POST", f"/console/v1/segments/{segment}/snapshots"),
            ("GET", f"/console/v1/segment-snapshots/{snapshot}"),
            ("GET", f"/console/v1/segment-snapshots/{snapshot}/members"),
            ("GET", f"/console/v1/templates/{template}"),
            ("GET", f"/console/v1/campaigns/{campaign}"),
            ("GET", f"/console/v1/campaigns/{campaign}/report"),
            ("GET", f"/console/v1/campaigns/{campaign}/recipients"),
            ("POST", f"/console/v1/campaigns/{campaign}/launch"),
            ("POST", f"/console/v1/campaigns/{campaign}/retry"),
            ("GET", f"/console/v1/journeys/{journey}"),
            ("GET", f"/console/v1/journeys/{journey}/report"),
            ("POST", f"/console/v1/journeys/{journey}/activate"),
            ("POST", f"/console/v1/journeys/{journey}/pause")):
        async with suite.http.request(method, path, headers=b) as response:
            assert response.status == 404, (method, path, await response.text())
    own_template = (await call(suite, "POST", "/console/v1/templates", b,
                               {"template": MESSAGE_TEMPLATE}))["template"]["template_id"]
    for template_id in (own_template, template):
        async with suite.http.post("/console/v1/campaigns", headers=b, json={"campaign": {
                "name": "stolen", "snapshot_id": snapshot, "template_id": template_id,
                "channel": "CHANNEL_INBOX", "variables": {"offer": "x"}}}) as response:
            assert response.status == 404, await response.text()
    assert (await call(suite, "GET", "/console/v1/segments", b)).get("segments", []) == []
    overview = (await call(suite, "GET", "/console/v1/dashboards/overview", b))["overview"]
    assert overview["brand_id"] == brand_b and int(overview.get("lv0_valid", 0)) == 0
    refused = await call(suite, "POST", "/console/v1/campaigns", b, {"campaign": {
        "brand_id": brand_a, "name": "x"}}, status=400)
    assert refused["error"]["reason"] == "FIELD_NOT_ALLOWED"
    refused = await call(suite, "POST", "/console/v1/segments", b,
                         {"brand_id": brand_a, "name": "x", "rule": RULE}, status=400)
    assert refused["error"]["details"]["field"] == "brand_id"
    # A's campaign and journey are untouched by B's attempts.
    assert (await call(suite, "GET", f"/console/v1/campaigns/{campaign}", a)
            )["campaign"]["status"] == "CAMPAIGN_STATUS_DRAFT"
    assert (await call(suite, "POST", f"/console/v1/journeys/{journey}/activate", a)
            )["journey"]["active"] is True
    assert (await call(suite, "POST", f"/console/v1/journeys/{journey}/pause", a)
            )["journey"].get("active", False) is False
    report = await call(suite, "GET", f"/console/v1/journeys/{journey}/report", a)
    assert int(report.get("entered", 0)) == 0
    later = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    scheduled = await call(suite, "POST", f"/console/v1/campaigns/{campaign}/launch", a,
                           {"schedule_time": later})
    assert scheduled["campaign"]["status"] == "CAMPAIGN_STATUS_SCHEDULED"
    assert scheduled["campaign"]["schedule_time"] == later


async def test_channel_credentials_policy_and_consent(full_suite: Suite) -> None:
    """Channel credentials are stored but never returned; the policy and a member's opt-out
    are read back; an unknown channel and an out-of-range quiet hour are refused by name."""
    suite = full_suite
    brand_id, shop_id = await suite.brand_and_shop()
    member = await suite.member(shop_id, "pin-consent")
    headers = await console(suite, brand_id)
    secret = "very-secret-aliyun-key-0042"
    async with suite.http.put("/console/v1/channels/sms", headers=headers, json={
            "provider": "PROVIDER_ALIYUN_SMS", "settings": {"sign_name": "Acme"},
            "credentials": {"access_key_id": "LTAI-id", "access_key_secret": secret}}
            ) as response:
        text = await response.text()
        assert response.status == 200, text
    assert secret not in text
    async with suite.http.get("/console/v1/channels", headers=headers) as response:
        text = await response.text()
        channels = (await response.json())["channels"]
    assert secret not in text
    assert [(c["channel"], sorted(c["credential_names"])) for c in channels] == [
        ("CHANNEL_SMS", ["access_key_id", "access_key_secret"])]
    bad = await call(suite, "PUT", "/console/v1/channels/fax", headers,
                     {"provider": "PROVIDER_SANDBOX"}, status=400)
    assert bad["error"]["details"]["field"] == "channel"

    policy = {"daily_cap": 2, "weekly_cap": 5, "quiet_start_minute": 1320,
              "quiet_end_minute": 480}
    await call(suite, "PUT", "/console/v1/messaging-policy", headers, {"policy": policy})
    read = (await call(suite, "GET", "/console/v1/messaging-policy", headers))["policy"]
    assert {k: read[k] for k in policy} == policy and read["brand_id"] == brand_id
    bad = await call(suite, "PUT", "/console/v1/messaging-policy", headers,
                     {"policy": {"quiet_start_minute": 5000}}, status=400)
    assert bad["error"]["details"]["field"] == "policy.quiet_start_minute"

    await call(suite, "PUT", f"/console/v1/members/{member}/consents", headers, {
        "channel": "CHANNEL_INBOX", "purpose": "PURPOSE_MARKETING", "granted": False,
        "source": "call_centre"})
    consents = (await call(suite, "GET", f"/console/v1/members/{member}/consents",
                           headers))["consents"]
    assert [(c["channel"], c["purpose"], c.get("granted", False)) for c in consents] == [
        ("CHANNEL_INBOX", "PURPOSE_MARKETING", False)]
    other = await console(suite, (await suite.brand_and_shop("Other"))[0])
    assert (await call(suite, "GET", f"/console/v1/members/{member}/consents",
                       other)).get("consents", []) == []


async def test_malformed_bodies_are_refused_naming_the_field(full_suite: Suite) -> None:
    """Wrong types deep in a rule, unknown fields, bad enums, bad JSON, huge bodies and
    invalid rules get a 400 naming the field; no body sent to any reach route yields a 5xx."""
    suite = full_suite
    brand_id, _ = await suite.brand_and_shop()
    headers = await console(suite, brand_id)
    cases: list[tuple[str, str, Any, str]] = [
        ("/console/v1/segments/preview", "POST", {"rule": {"group": {
            "operator": "RULE_GROUP_OPERATOR_AND", "rules": [
                {"condition": {"field": "age", "operator": "gte", "number": "old"}}]}}},
         "rule.group.rules[0].condition.number"),
        ("/console/v1/segments/preview", "POST", {"rule": {"grp": {}}}, "rule.grp"),
        ("/console/v1/segments/preview", "POST", {"rule": {
            "group": {"operator": "RULE_GROUP_OPERATOR_AND", "rules": []},
            "condition": {"field": "age"}}}, "rule.condition"),
        ("/console/v1/segments/preview", "POST", {}, "rule"),
        ("/console/v1/segments", "POST", {"name": 7, "rule": RULE}, "name"),
        ("/console/v1/segments", "POST", {"name": "x", "rule": {"condition": {
            "field": "shoe_size", "operator": "eq", "number": 1}}},
         "rule.condition.field"),
        ("/console/v1/templates", "POST",
         {"template": {**MESSAGE_TEMPLATE, "channel": "CHANNEL_FAX"}},
         "template.channel"),
        ("/console/v1/campaigns", "POST", {"campaign": {"throttle_per_second": 1.5}},
         "campaign.throttle_per_second"),
        ("/console/v1/campaigns", "POST", {}, "campaign"),
        ("/console/v1/campaigns", "POST", {"campaign": {"variables": ["offer"]}},
         "campaign.variables"),
        ("/console/v1/journeys", "POST", {"journey": {"steps": {"step_id": "a"}}},
         "journey.steps"),
        ("/console/v1/journeys", "POST", {"journey": {"steps": [{"wait_minutes": True}]}},
         "journey.steps[0].wait_minutes"),
        ("/console/v1/dashboards/refresh", "POST", {"start_date": "2026-01-01"}, "end_date"),
        ("/console/v1/campaigns/c1/launch", "POST", {"schedule_time": "tomorrow"},
         "schedule_time"),
        ("/console/v1/campaigns/c1/launch", "POST", {"campaign_id": "other"}, "campaign_id"),
        ("/console/v1/messaging-policy", "PUT", {"policy": {"daily_cap": 2 ** 40}},
         "policy.daily_cap"),
        ("/console/v1/messaging-policy", "PUT", {"policy": {"weekly_cap": "--5"}},
         "policy.weekly_cap"),
        ("/console/v1/members/acc_1/consents", "PUT", {"channel": "CHANNEL_SMS"}, "purpose"),
        ("/console/v1/members/acc_1/consents", "PUT",
         {"channel": "CHANNEL_SMS", "purpose": "PURPOSE_MARKETING"}, "granted"),
    ]
    for path, method, body, field in cases:
        refused = await call(suite, method, path, headers, body, status=400)
        assert refused["error"]["details"].get("field") == field, (path, body, refused)

    reach = {(r.method, r.path) for r in _reach_routes()}
    writes = [r for r in route_table().routes if (r.method, r.path) in reach
              and r.method in ("POST", "PUT") and r.body is not None]
    assert len(writes) >= 10
    raw_bodies: list[bytes] = [b"{not json", b"[1, 2]", b'"text"', b"null", b"1e999",
                               b'{"a": ' * 2000 + b"1" + b"}" * 2000,
                               b'{"x": "' + b"y" * 300_000 + b'"}']
    for route in writes:
        path = route.path.replace("{channel}", "sms")
        for name in ("segment_id", "campaign_id", "journey_id", "account_id"):
            path = path.replace(f"{{{name}}}", "id_1")
        for raw in raw_bodies:
            async with suite.http.request(route.method, path, data=raw, headers={
                    **headers, "Content-Type": "application/json"}) as response:
                assert 400 <= response.status < 500, (route.path, raw[:20], response.status,
                                                      await response.text())
        for body in ({"rule": 5, "name": [], "template": "t", "campaign": 1, "journey": None,
                      "policy": [], "provider": 3, "start_date": {}, "channel": False},
                     {"unknown_field": 1}):
            async with suite.http.request(route.method, path, json=body,
                                          headers=headers) as response:
                assert 400 <= response.status < 500, (route.path, body, response.status,
                                                      await response.text())


async def test_reach_routes_need_a_merchant_and_are_documented(suite: Suite) -> None:
    """Without a token the console answers 401 and a shopper token is refused; /openapi.json
    documents the reach routes with the merchant scheme and paging."""
    async with suite.http.get("/console/v1/segments") as response:
        assert response.status == 401
    _, shopper = await suite.shopper("pin-shopper")
    async with suite.http.get("/console/v1/dashboards/overview",
                              headers={"Authorization": f"Bearer {shopper}"}) as response:
        assert response.status == 403, await response.text()
    async with suite.http.get("/openapi.json") as response:
        paths = (await response.json())["paths"]
    listing = paths["/console/v1/segments"]["get"]
    assert listing["security"] == [{"merchant": []}]
    assert {p["name"] for p in listing["parameters"]} >= {"page_size", "page_token"}
    assert "requestBody" in paths["/console/v1/campaigns"]["post"]
    for path in ("/console/v1/segments/{segment_id}/snapshots",
                 "/console/v1/segment-snapshots/{snapshot_id}/members",
                 "/console/v1/dashboards/daily", "/console/v1/channels/{channel}",
                 "/console/v1/campaigns/{campaign_id}/report",
                 "/console/v1/journeys/{journey_id}/activate",
                 "/storefront/v1/brands/{brand_id}/messages/unread-count"):
        assert path in paths, path
