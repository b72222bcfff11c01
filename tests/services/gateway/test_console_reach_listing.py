"""Console listings of templates, campaigns and journeys over real HTTP: the merchant token's
brand only, newest first, paged, filtered, and listed in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from tests.services.gateway.conftest import Suite
from tests.services.gateway.console_helpers import MESSAGE_TEMPLATE, call, console


async def every_page(suite: Suite, path: str, headers: dict[str, str], key: str,
                     size: int) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    token, pages = "", 0
    while True:
        sep = "&" if "?" in path else "?"
        page = await call(suite, "GET", f"{path}{sep}page_size={size}&page_token={token}",
                          headers)
        items += page.get(key, [])
        pages += 1
        token = page.get("next_page_token", "")
        if not token:
            return items, pages


async def test_merchant_lists_only_its_brand_paged(full_suite: Suite) -> None:
    """Each merchant pages through its own templates, campaigns and journeys (newest first)
    and never sees the other brand's; filters and bad filters behave; OpenAPI lists them."""
    suite = full_suite
    brand_id, shop_id = await suite.brand_and_shop()
    other_id, _ = await suite.brand_and_shop("Other")
    await suite.member(shop_id, "pin-listing")
    mine, theirs = await console(suite, brand_id), await console(suite, other_id)

    created = [(await call(suite, "POST", "/console/v1/templates", mine,
                           {"template": {**MESSAGE_TEMPLATE, "name": f"t{i}"}}))["template"]
               for i in range(5)]
    foreign = (await call(suite, "POST", "/console/v1/templates", theirs,
                          {"template": MESSAGE_TEMPLATE}))["template"]
    templates, pages = await every_page(suite, "/console/v1/templates", mine, "templates", 2)
    assert pages == 3
    assert sorted(t["template_id"] for t in templates) == sorted(
        t["template_id"] for t in created)
    assert foreign["template_id"] not in {t["template_id"] for t in templates}
    stamps = [t["create_time"] for t in templates]
    assert stamps == sorted(stamps, reverse=True)
    assert (await call(suite, "GET", "/console/v1/templates?channel=sms", mine)).get(
        "templates", []) == []
    assert len((await call(suite, "GET", "/console/v1/templates?channel=inbox",
                           mine))["templates"]) == 5
    bad = await call(suite, "GET", "/console/v1/templates?channel=fax", mine, status=400)
    assert bad["error"]["details"]["field"] == "channel"
    others = await call(suite, "GET", "/console/v1/templates", theirs)
    assert [t["template_id"] for t in others["templates"]] == [foreign["template_id"]]

    segment = (await call(suite, "POST", "/console/v1/segments", mine, {
        "name": "all", "rule": {"condition": {"field": "tier", "operator": "gte",
                                              "number": 0}}}))["segment"]
    snapshot = (await call(suite, "POST", f"/console/v1/segments/{segment['segment_id']}"
                           "/snapshots", mine))["snapshot"]
    campaigns = [(await call(suite, "POST", "/console/v1/campaigns", mine, {"campaign": {
        "name": f"c{i}", "snapshot_id": snapshot["snapshot_id"],
        "template_id": created[0]["template_id"], "channel": "CHANNEL_INBOX",
        "variables": {"offer": "20% off"}}}))["campaign"] for i in range(3)]
    listed, pages = await every_page(suite, "/console/v1/campaigns", mine, "campaigns", 2)
    assert pages == 2
    assert sorted(c["campaign_id"] for c in listed) == sorted(
        c["campaign_id"] for c in campaigns)
    drafts = await call(suite, "GET", "/console/v1/campaigns?status=draft", mine)
    assert len(drafts["campaigns"]) == 3
    assert (await call(suite, "GET", "/console/v1/campaigns?status=running", mine)).get(
        "campaigns", []) == []
    assert (await call(suite, "GET", "/console/v1/campaigns", theirs)).get("campaigns", []) == []

    journey = (await call(suite, "POST", "/console/v1/journeys", mine, {"journey": {
        "name": "welcome", "trigger": "JOURNEY_TRIGGER_CARD_OPENED",
        "steps": [{"step_id": "pause", "kind": "JOURNEY_STEP_KIND_WAIT",
                   "wait_minutes": 5}]}}))["journey"]
    journeys = await call(suite, "GET", "/console/v1/journeys", mine)
    assert [j["journey_id"] for j in journeys["journeys"]] == [journey["journey_id"]]
    assert (await call(suite, "GET", "/console/v1/journeys?state=active", mine)).get(
        "journeys", []) == []
    assert (await call(suite, "GET", "/console/v1/journeys", theirs)).get("journeys", []) == []
    forged = await call(suite, "GET", "/console/v1/journeys?page_token=bm9wZQ", mine,
                        status=400)
    assert forged["error"]["details"]["field"] == "page_token"
    await call(suite, "GET", "/console/v1/journeys", {}, status=401)

    spec = await call(suite, "GET", "/openapi.json", {})
    for path in ("/console/v1/templates", "/console/v1/campaigns", "/console/v1/journeys"):
        assert "get" in spec["paths"][path]
