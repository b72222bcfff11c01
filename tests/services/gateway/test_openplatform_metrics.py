"""Open-platform calls and quota refusals are counted per app; a key nobody issued never
becomes a label."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tests.services.gateway.conftest import Suite
from tests.services.gateway.openplatform_helpers import (
    authorised_member,
    call,
    error_code,
    signed,
)


def sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_calls_and_quota_refusals_are_counted_per_app(suite: Suite) -> None:
    """An app allowed 2 calls a minute makes 3: two counted ok, one refused by its quota."""
    app_key, secret, token, account_id, _ = await authorised_member(suite, calls_per_minute=2)
    codes = []
    for _ in range(3):
        body = await call(suite.http, signed(app_key, secret, "brandclub.member.get",
                                             {"account_id": account_id}, token))
        codes.append(error_code(body))
    assert codes == [None, None, "2"]
    assert sample("brandclub_open_platform_calls_total", app_key=app_key, result="ok") == 2
    assert sample("brandclub_open_platform_calls_total", app_key=app_key,
                  result="error:2") == 1
    assert sample("brandclub_open_platform_quota_refusals_total", app_key=app_key) == 1


def app_key_labels() -> list[str]:
    return [sample.labels["app_key"] for family in REGISTRY.collect()
            for sample in family.samples if "app_key" in sample.labels]


def unknown_calls() -> float:
    return sum(sample.value for family in REGISTRY.collect() for sample in family.samples
               if sample.name == "brandclub_open_platform_calls_total"
               and sample.labels.get("app_key") == "unknown")


async def test_an_unknown_app_key_is_counted_as_unknown(suite: Suite) -> None:
    """A call with an app key nobody issued counts under app_key="unknown", so random keys
    cannot mint series."""
    before = unknown_calls()
    body = await call(suite.http, signed("made-up-key-123", "secret", "brandclub.member.get",
                                         {"account_id": "acc_1"}, "token"))
    assert error_code(body) is not None
    assert unknown_calls() == before + 1
    assert "made-up-key-123" not in app_key_labels()
