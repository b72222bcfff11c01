"""Activities over the open platform (an ISV's activity life cycle) and the storefront's
sign-in and message box, against the real engagement and messaging services."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.services.gateway.conftest import Suite
from tests.services.gateway.helpers import sign_in_spec
from tests.services.gateway.openplatform_helpers import call, result, signed

SCOPES = ("member.read", "activity.read", "activity.write")


async def test_isv_activity_life_cycle(full_suite: Suite) -> None:
    """An ISV creates, reads, lists, modifies and closes its own activity; another app cannot
    close it."""
    suite = full_suite
    brand_id, shop_id = await suite.brand_and_shop()
    app_key, secret = await suite.app(scopes=SCOPES)
    token = str((await suite.authorise(app_key, secret, brand_id, shop_id))["access_token"])

    async def run(method: str, business: dict[str, Any], key: str = app_key,
                  app_secret: str = secret, access: str = token) -> dict[str, Any]:
        return result(await call(suite.http, signed(key, app_secret, method, business, access)),
                      method)

    created = await run("brandclub.activity.create",
                        {"spec": sign_in_spec(), "publish": True, "businessId": "a1"})
    assert created["success"] is True, created
    activity = created["data"]["activity"]
    assert activity["owner"] == {"kind": "OWNER_KIND_ISV_APP", "id": app_key}
    got = await run("brandclub.activity.get", {"activity_id": activity["activity_id"]})
    assert got["data"]["activity"]["spec"]["title"] == "Daily sign-in"
    listed = await run("brandclub.activity.list", {"state": "LIVE"})
    assert [a["activity_id"] for a in listed["data"]["activities"]] == [activity["activity_id"]]
    modified = await run("brandclub.activity.modify", {"activity_id": activity["activity_id"],
                                                       "spec": {**activity["spec"],
                                                                "title": "Renamed"}})
    assert modified["success"] is True, modified
    assert modified["data"]["activity"]["spec"]["title"] == "Renamed"
    other_key, other_secret = await suite.app(scopes=SCOPES, name="app-2")
    other_token = str((await suite.authorise(other_key, other_secret, brand_id,
                                             shop_id))["access_token"])
    foreign = await run("brandclub.activity.close", {"activity_id": activity["activity_id"]},
                        other_key, other_secret, other_token)
    assert foreign["success"] is False
    closed = await run("brandclub.activity.close", {"activity_id": activity["activity_id"]})
    assert closed["data"]["activity"]["state"] == "ACTIVITY_STATE_CLOSED"


async def test_storefront_sign_in_and_message_box(full_suite: Suite) -> None:
    """A member signs in through the storefront and reads the streak; the message box answers
    for the shopper's own account; sign-in is rate limited per device."""
    suite = full_suite
    brand_id, shop_id = await suite.brand_and_shop()
    app_key, secret = await suite.app(scopes=SCOPES)
    token = str((await suite.authorise(app_key, secret, brand_id, shop_id))["access_token"])
    created = result(await call(suite.http, signed(
        app_key, secret, "brandclub.activity.create",
        {"spec": sign_in_spec(), "publish": True, "businessId": "s1"}, token)),
        "brandclub.activity.create")
    activity_id = created["data"]["activity"]["activity_id"]
    _, shopper = await suite.shopper("pin-signer")
    headers = {"Authorization": f"Bearer {shopper}", "X-Device-Id": "phone-1"}
    await (await suite.http.post(f"/storefront/v1/shops/{shop_id}/follow",
                                 headers=headers)).read()
    base = f"/storefront/v1/brands/{brand_id}"
    async with suite.http.post(f"{base}/activities/{activity_id}/sign-in",
                               headers=headers) as response:
        assert response.status == 200, await response.text()
    async with suite.http.get(f"{base}/activities/{activity_id}/sign-in",
                              headers=headers) as response:
        assert response.status == 200, await response.text()
    async with suite.http.get(f"{base}/messages", headers=headers) as response:
        assert response.status == 200, await response.text()
        assert (await response.json()).get("messages", []) == []
    statuses = []
    for _ in range(10):
        async with suite.http.post(f"{base}/activities/{activity_id}/sign-in",
                                   headers=headers) as response:
            statuses.append(response.status)
    assert statuses[-1] == 429 and 500 not in statuses


async def test_storefront_vote_quiz_and_invite(full_suite: Suite) -> None:
    """A member votes and sees the result, reads a quiz without its answers and submits it,
    and gets an invite code."""
    suite = full_suite
    brand_id, shop_id = await suite.brand_and_shop()
    headers = {"Authorization": f"Bearer {await suite.merchant_token(brand_id)}"}
    configs: dict[str, dict[str, Any]] = {
        "vote": {"vote": {"options": [{"option_id": "red", "label": "Red"},
                                      {"option_id": "blue", "label": "Blue"}]}},
        "quiz": {"quiz": {"questions": [{"question_id": "q1", "text": "2+2?",
                                         "options": [{"option_id": "a", "text": "4"},
                                                     {"option_id": "b", "text": "5"}],
                                         "correct_option_ids": ["a"]}],
                          "points_per_correct": 5}},
        "invite": {"invite": {"inviter_reward": {"points": 10}}},
    }
    ids = {}
    for kind, config in configs.items():
        spec = {**sign_in_spec(kind), **config}
        del spec["sign_in"]
        async with suite.http.post("/console/v1/activities", headers=headers,
                                   json={"spec": spec, "publish": True}) as response:
            assert response.status == 200, await response.text()
            ids[kind] = (await response.json())["activity"]["activity_id"]
    _, shopper = await suite.shopper("pin-player")
    me = {"Authorization": f"Bearer {shopper}"}
    await (await suite.http.post(f"/storefront/v1/shops/{shop_id}/follow", headers=me)).read()
    base = f"/storefront/v1/brands/{brand_id}/activities"
    async with suite.http.post(f"{base}/{ids['vote']}/vote", json={"option_id": "red"},
                               headers=me) as response:
        assert response.status == 200, await response.text()
    async with suite.http.get(f"{base}/{ids['vote']}/vote", headers=me) as response:
        assert "red" in await response.text()
    async with suite.http.get(f"{base}/{ids['quiz']}/quiz", headers=me) as response:
        assert response.status == 200, await response.text()
        assert "correct_option_ids" not in await response.text()
    async with suite.http.post(f"{base}/{ids['quiz']}/quiz", headers=me, json={
            "answers": [{"question_id": "q1", "option_ids": ["a"]}]}) as response:
        assert response.status == 200, await response.text()
    async with suite.http.get(f"{base}/{ids['invite']}/invite-code", headers=me) as response:
        assert response.status == 200, await response.text()


async def test_storefront_lottery_draw_is_rate_limited_per_device(
        full_suite: Suite) -> None:
    """A member draws in a free lottery through the storefront; one device hammering the draw
    is cut off with 429 and never sees a 5xx."""
    suite = full_suite
    brand_id, shop_id = await suite.brand_and_shop()
    headers = {"Authorization": f"Bearer {await suite.merchant_token(brand_id)}"}
    spec = {**sign_in_spec("Lucky draw"), "lottery": {
        "mode": "LOTTERY_MODE_INSTANT", "cost_points": 0, "prizes": [
            {"prize_id": "gift", "name": "Gift", "kind": "PRIZE_KIND_POINTS", "weight": 50,
             "stock": 100, "points": 10},
            {"prize_id": "thanks", "name": "Thanks", "kind": "PRIZE_KIND_THANKS",
             "weight": 50}]}}
    del spec["sign_in"]
    async with suite.http.post("/console/v1/activities", headers=headers,
                               json={"spec": spec, "publish": True}) as response:
        assert response.status == 200, await response.text()
        activity_id = (await response.json())["activity"]["activity_id"]
    _, shopper = await suite.shopper("pin-lucky")
    me = {"Authorization": f"Bearer {shopper}", "X-Device-Id": "dev-lucky"}
    await (await suite.http.post(f"/storefront/v1/shops/{shop_id}/follow", headers=me)).read()
    url = f"/storefront/v1/brands/{brand_id}/activities/{activity_id}/draw"
    statuses = []
    for _ in range(22):
        async with suite.http.post(url, headers=me) as response:
            statuses.append(response.status)
            if response.status == 200:
                assert "draw" in await response.json()
    assert statuses[0] == 200 and statuses[-1] == 429 and 500 not in statuses


async def test_console_shows_lottery_status_and_undelivered_rewards(full_suite: Suite) -> None:
    """The brand operator sees, in the console, a lottery's draws and prizes (with draws stopped
    for good) and the rewards that could not be delivered; another brand sees neither."""
    suite = full_suite
    brand_id, shop_id = await suite.brand_and_shop()
    headers = {"Authorization": f"Bearer {await suite.merchant_token(brand_id)}"}
    spec = {**sign_in_spec("Lucky draw"), "lottery": {
        "mode": "LOTTERY_MODE_INSTANT", "cost_points": 0, "prizes": [
            {"prize_id": "gift", "name": "Gift", "kind": "PRIZE_KIND_POINTS", "weight": 100,
             "stock": 5, "points": 10}]}}
    del spec["sign_in"]
    async with suite.http.post("/console/v1/activities", headers=headers,
                               json={"spec": spec, "publish": True}) as response:
        assert response.status == 200, await response.text()
        activity_id = (await response.json())["activity"]["activity_id"]
    _, shopper = await suite.shopper("pin-status")
    me = {"Authorization": f"Bearer {shopper}", "X-Device-Id": "dev-status"}
    await (await suite.http.post(f"/storefront/v1/shops/{shop_id}/follow", headers=me)).read()
    async with suite.http.post(f"/storefront/v1/brands/{brand_id}/activities/{activity_id}/draw",
                               headers=me) as response:
        assert response.status == 200, await response.text()
    status_url = f"/console/v1/activities/{activity_id}/lottery-status"
    async with suite.http.get(status_url, headers=headers) as response:
        assert response.status == 200, await response.text()
        status = await response.json()
    assert int(status["draws"]) == 1
    assert status.get("dead_letter_draws", []) == []
    async with suite.http.get("/console/v1/rewards/failed", headers=headers) as response:
        assert response.status == 200, await response.text()
        assert (await response.json()).get("grants", []) == []
    other_brand, _ = await suite.brand_and_shop("Other")
    other = {"Authorization": f"Bearer {await suite.merchant_token(other_brand)}"}
    async with suite.http.get(status_url, headers=other) as response:
        assert response.status == 404, await response.text()


async def test_storefront_shows_the_shopper_their_own_rewards(full_suite: Suite) -> None:
    """A shopper reads their activity rewards (here a sign-in's points, delivered) through the
    storefront; another shopper's list is empty; no token, 401."""
    suite = full_suite
    brand_id, shop_id = await suite.brand_and_shop()
    headers = {"Authorization": f"Bearer {await suite.merchant_token(brand_id)}"}
    async with suite.http.post("/console/v1/activities", headers=headers,
                               json={"spec": sign_in_spec(), "publish": True}) as response:
        assert response.status == 200, await response.text()
        activity_id = (await response.json())["activity"]["activity_id"]
    rewards_url = f"/storefront/v1/brands/{brand_id}/rewards"
    shoppers = {}
    for pin in ("pin-rewarded", "pin-idle"):
        _, token = await suite.shopper(pin)
        shoppers[pin] = {"Authorization": f"Bearer {token}"}
        await (await suite.http.post(f"/storefront/v1/shops/{shop_id}/follow",
                                     headers=shoppers[pin])).read()
    async with suite.http.post(
            f"/storefront/v1/brands/{brand_id}/activities/{activity_id}/sign-in",
            headers=shoppers["pin-rewarded"]) as response:
        assert response.status == 200, await response.text()

    async def grants(pin: str) -> list[dict[str, Any]]:
        async with suite.http.get(rewards_url, headers=shoppers[pin]) as response:
            assert response.status == 200, await response.text()
            listed: list[dict[str, Any]] = (await response.json()).get("grants", [])
            return listed

    for _ in range(50):  # the reward is granted after the reply
        mine = await grants("pin-rewarded")
        if mine and mine[0]["state"] == "GRANT_STATE_DONE":
            break
        await asyncio.sleep(0.1)
    assert [(g["points"], g["reason_code"], g["state"]) for g in mine] == [
        (5, "SIGN_IN_REWARD", "GRANT_STATE_DONE")]
    assert await grants("pin-idle") == []
    async with suite.http.get(rewards_url) as response:
        assert response.status == 401
