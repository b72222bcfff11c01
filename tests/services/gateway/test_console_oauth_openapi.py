"""Console API (ISV authorisations), the OAuth endpoints, the OpenAPI document, and the
storefront's points balance and abuse limits, over HTTP."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.services.gateway.conftest import REDIRECT_URI, Suite


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_authorize_redirects_with_code_and_state(suite: Suite) -> None:
    """GET /oauth2/authorize by a merchant redirects to the app with a code and the state; the
    code exchanges for a 24-hour token of a test app, which refreshes."""
    brand_id, shop_id = await suite.brand_and_shop()
    app_key, secret = await suite.app()
    async with suite.http.get("/oauth2/authorize", allow_redirects=False, params={
            "app_key": app_key, "response_type": "code", "redirect_uri": REDIRECT_URI,
            "state": "xyz", "shop_id": shop_id, "scope": "member.read"},
            headers=bearer(await suite.merchant_token(brand_id))) as response:
        assert response.status == 302, await response.text()
        location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    async with suite.http.get("/oauth2/access_token", params={
            "app_key": app_key, "app_secret": secret, "grant_type": "authorization_code",
            "code": query["code"][0]}) as response:
        assert response.status == 200
        grant = await response.json()
    assert grant["expires_in"] == 24 * 3600 and grant["scope"] == "member.read"
    assert grant["open_id"] == shop_id and isinstance(grant["time"], int)
    async with suite.http.post("/oauth2/refresh_token", data={
            "app_key": app_key, "app_secret": secret, "grant_type": "refresh_token",
            "refresh_token": grant["refresh_token"]}) as response:
        assert response.status == 200
        assert (await response.json())["access_token"] != grant["access_token"]


async def test_token_endpoint_errors_are_oauth_errors(suite: Suite) -> None:
    """A bad secret is invalid_client (401); a bad code is invalid_grant (400)."""
    app_key, secret = await suite.app()
    async with suite.http.post("/oauth2/access_token", data={
            "app_key": app_key, "app_secret": "nope", "grant_type": "authorization_code",
            "code": "c"}) as response:
        assert response.status == 401
        assert (await response.json())["error"] == "invalid_client"
    async with suite.http.post("/oauth2/access_token", data={
            "app_key": app_key, "app_secret": secret, "grant_type": "authorization_code",
            "code": "c"}) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_grant"
    async with suite.http.post("/oauth2/access_token", data={"grant_type": "password"}
                               ) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "unsupported_grant_type"


async def test_merchant_cannot_authorise_another_brands_shop(suite: Suite) -> None:
    """A merchant of brand A granting an app brand B's shop is refused with 403."""
    brand_a, _ = await suite.brand_and_shop("A")
    _, shop_b = await suite.brand_and_shop("B")
    app_key, _ = await suite.app()
    async with suite.http.post("/console/v1/isv-authorizations",
                               json={"app_key": app_key, "shop_id": shop_b},
                               headers=bearer(await suite.merchant_token(brand_a))) as response:
        assert response.status == 403
        assert (await response.json())["error"]["reason"] == "SHOP_NOT_IN_BRAND"


async def test_console_lists_only_its_own_brands_authorisations(suite: Suite) -> None:
    """Each brand's console lists its own authorisations and nobody else's."""
    brand_a, shop_a = await suite.brand_and_shop("A")
    brand_b, _ = await suite.brand_and_shop("B")
    app_key, secret = await suite.app()
    await suite.authorise(app_key, secret, brand_a, shop_a)
    async with suite.http.get("/console/v1/isv-authorizations",
                              headers=bearer(await suite.merchant_token(brand_a))) as response:
        listed = (await response.json())["authorizations"]
    assert [(a["app_key"], a["shop_id"]) for a in listed] == [(app_key, shop_a)]
    async with suite.http.get("/console/v1/isv-authorizations",
                              headers=bearer(await suite.merchant_token(brand_b))) as response:
        assert (await response.json())["authorizations"] == []


async def test_console_needs_a_merchant_token(suite: Suite) -> None:
    """A shopper token cannot use the console (403); no token is 401."""
    _, token = await suite.shopper("pin-c")
    async with suite.http.get("/console/v1/brand", headers=bearer(token)) as response:
        assert response.status == 403
        assert (await response.json())["error"]["reason"] == "MERCHANT_TOKEN_REQUIRED"
    async with suite.http.get("/console/v1/brand") as response:
        assert response.status == 401


async def test_console_malformed_bodies_are_400_never_5xx(suite: Suite) -> None:
    """Bad JSON, wrong types, missing fields and huge bodies answer 4xx JSON errors."""
    brand_id, _ = await suite.brand_and_shop()
    headers = bearer(await suite.merchant_token(brand_id))
    cases: list[tuple[bytes, str]] = [
        (b"{not json", "INVALID_JSON"), (b"[1]", "INVALID_JSON"),
        (b'{"app_key": 5, "shop_id": "s"}', "FIELD_TYPE_INVALID"),
        (b'{"shop_id": "s"}', "FIELD_REQUIRED"),
        (b'{"app_key": "A", "shop_id": "s", "scopes": "all"}', "FIELD_TYPE_INVALID"),
    ]
    for payload, reason in cases:
        async with suite.http.post("/console/v1/isv-authorizations", data=payload,
                                   headers={**headers, "Content-Type": "application/json"}
                                   ) as response:
            assert response.status == 400, payload
            assert (await response.json())["error"]["reason"] == reason
    async with suite.http.post("/console/v1/isv-authorizations", data=b"x" * 3_000_000,
                               headers=headers) as response:
        assert 400 <= response.status < 500
    async with suite.http.get("/console/v1/isv-authorizations?page_size=abc",
                              headers=headers) as response:
        assert response.status == 400


async def test_openapi_document_covers_storefront_and_console(suite: Suite) -> None:
    """/openapi.json lists every storefront and console route with its security scheme."""
    async with suite.http.get("/openapi.json") as response:
        assert response.status == 200
        document = await response.json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert paths["/storefront/v1/brands/{brand_id}/card"]["get"]["security"] == [{"shopper": []}]
    assert "post" in paths["/console/v1/isv-authorizations"]
    from services.gateway.main import route_table

    assert {(r.method.lower(), r.path) for r in route_table().routes} == {
        (method, path) for path, ops in paths.items() for method in ops}


async def test_storefront_points_balance_is_the_shoppers_own(suite: Suite) -> None:
    """The points endpoint answers for the token's account only, and only once the shopper is
    a member of the brand (before that: 404 MEMBER_NOT_FOUND, the eligibility rule)."""
    brand_id, shop_id = await suite.brand_and_shop()
    _, token = await suite.shopper("pin-p")
    async with suite.http.get(f"/storefront/v1/brands/{brand_id}/points",
                              headers=bearer(token)) as response:
        assert response.status == 404
        assert (await response.json())["error"]["reason"] == "MEMBER_NOT_FOUND"
    async with suite.http.post(f"/storefront/v1/shops/{shop_id}/follow",
                               headers=bearer(token)) as response:
        assert response.status == 200, await response.text()
    async with suite.http.get(f"/storefront/v1/brands/{brand_id}/points",
                              headers=bearer(token)) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["points"]["available"] == 0


async def test_follow_is_rate_limited_per_device(suite: Suite) -> None:
    """One device following for many shoppers is cut off with 429 RATE_LIMITED."""
    _, shop_id = await suite.brand_and_shop()
    statuses = []
    for index in range(32):
        _, token = await suite.shopper(f"farm-{index}")
        async with suite.http.post(f"/storefront/v1/shops/{shop_id}/follow",
                                   headers={**bearer(token), "X-Device-Id": "dev-1"}
                                   ) as response:
            statuses.append(response.status)
            if response.status == 429:
                assert (await response.json())["error"]["reason"] == "RATE_LIMITED"
    assert statuses[:30] == [200] * 30 and statuses[30:] == [429, 429]


async def test_every_answer_carries_a_request_id(suite: Suite) -> None:
    """A caller's X-Request-Id is echoed and put in JSON errors; without one a fresh id is
    made; a header with unsafe characters is replaced."""
    async with suite.http.get("/storefront/v1/brands/b/card",
                              headers={"X-Request-Id": "req-42"}) as response:
        assert response.status == 401
        assert response.headers["X-Request-Id"] == "req-42"
        assert (await response.json())["error"]["request_id"] == "req-42"
    async with suite.http.get("/healthz") as response:
        assert len(response.headers["X-Request-Id"]) == 32
    async with suite.http.get("/healthz", headers={"X-Request-Id": "a b<c>"}) as response:
        assert response.headers["X-Request-Id"] != "a b<c>"
