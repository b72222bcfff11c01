"""The gateway's domain on its own (no servers): the caller principal, open-platform method
parameters and their validation, and the JOS wire protocol (signs, timestamps, envelopes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from libs.errors import InvalidArgument, PermissionDenied
from services.gateway.domain import openplatform
from services.gateway.domain.catalogue import MethodSpec, Param, refuse_param_text
from services.gateway.domain.principal import Principal, PrincipalKind

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


def reason_of(call: object, *args: object) -> str:
    with pytest.raises(InvalidArgument) as error:
        call(*args)  # type: ignore[operator]
    return error.value.reason


# --- principal ----------------------------------------------------------------------------

def test_a_shopper_token_is_only_good_for_shopper_endpoints() -> None:
    """A shopper gets their own account id and is refused merchant endpoints."""
    shopper = Principal(PrincipalKind.SHOPPER, "acc_1", "", LATER)
    assert shopper.require_shopper() == "acc_1"
    with pytest.raises(PermissionDenied) as error:
        shopper.require_merchant()
    assert error.value.reason == "MERCHANT_TOKEN_REQUIRED"


def test_a_merchant_token_is_scoped_to_its_one_brand() -> None:
    """A merchant gets the token's brand, is refused shopper endpoints, and a merchant
    token without a brand is no merchant at all."""
    merchant = Principal(PrincipalKind.MERCHANT, "", "brd_1", LATER, "mus_1")
    assert merchant.require_merchant() == "brd_1"
    with pytest.raises(PermissionDenied) as error:
        merchant.require_shopper()
    assert error.value.reason == "SHOPPER_TOKEN_REQUIRED"
    with pytest.raises(PermissionDenied):
        Principal(PrincipalKind.MERCHANT, "", "", LATER, "mus_1").require_merchant()


# --- method parameters ---------------------------------------------------------------------

def test_integer_params_accept_quoted_digits_but_not_booleans() -> None:
    """Clients that quote numbers are understood; true is never an integer."""
    count = Param("count", "integer", "how many", minimum=1, maximum=100)
    assert count.check(5) == 5 and count.check(" 42 ") == 42
    assert reason_of(count.check, True) == "PARAM_TYPE_INVALID"
    assert reason_of(count.check, "4.5") == "PARAM_TYPE_INVALID"
    assert reason_of(count.check, "1" * 21) == "PARAM_TYPE_INVALID"


def test_integer_bounds_are_inclusive_and_int64_always_applies() -> None:
    """minimum and maximum pass, one beyond fails; an unbounded integer must fit int64."""
    count = Param("count", "integer", "how many", minimum=1, maximum=100)
    assert count.check(1) == 1 and count.check(100) == 100
    assert reason_of(count.check, 0) == "PARAM_OUT_OF_RANGE"
    assert reason_of(count.check, 101) == "PARAM_OUT_OF_RANGE"
    free = Param("n", "integer", "any")
    assert free.check(2 ** 63 - 1) == 2 ** 63 - 1
    assert reason_of(free.check, 2 ** 63) == "PARAM_OUT_OF_RANGE"
    assert reason_of(free.check, -(2 ** 63) - 1) == "PARAM_OUT_OF_RANGE"


def test_string_params_are_trimmed_bounded_and_storable() -> None:
    """Strings are trimmed; blank required, too long, or NUL-bearing text is refused."""
    name = Param("name", "string", "a name", required=True, max_length=5)
    assert name.check("  abc ") == "abc"
    assert reason_of(name.check, "   ") == "PARAM_REQUIRED"
    assert reason_of(name.check, "abcdef") == "PARAM_TOO_LONG"
    assert reason_of(name.check, "a\x00b") == "PARAM_TEXT_INVALID"
    assert reason_of(name.check, 7) == "PARAM_TYPE_INVALID"
    assert reason_of(refuse_param_text, "\udcff", "name") == "PARAM_TEXT_INVALID"


def test_object_params_name_the_bad_nested_field() -> None:
    """Unstorable text inside an object names its path under the parameter."""
    template = Param("template", "object", "a template")
    assert template.check({"title": "ok"}) == {"title": "ok"}
    with pytest.raises(InvalidArgument) as error:
        template.check({"title": "a\x00b"})
    assert error.value.reason == "PARAM_TEXT_INVALID"
    assert error.value.metadata["field"].startswith("template.")


SPEC = MethodSpec("brandclub.points.grant", "points.write", "Grant points.", True, (
    Param("account_id", "string", "member", required=True),
    Param("points", "integer", "how many", required=True, minimum=1),
    Param("reason", "string", "why", default="isv"),
))


def test_method_validation_fills_defaults_and_ignores_unknown_keys() -> None:
    """Known parameters are checked, missing optional ones get their default, unknown keys
    are ignored (forward compatible, as the marketplace does)."""
    assert SPEC.validate('{"account_id": "acc_1", "points": "5", "future": 1}') == {
        "account_id": "acc_1", "points": 5, "reason": "isv"}


@pytest.mark.parametrize("raw, reason", [
    ('{"points": 5}', "PARAM_REQUIRED"),
    ("", "PARAM_REQUIRED"),
    ("not json", "PARAM_JSON_INVALID"),
    ("[1, 2]", "PARAM_JSON_INVALID"),
    ("[" * 100_000, "PARAM_JSON_INVALID"),
])
def test_method_validation_refusals(raw: str, reason: str) -> None:
    """Missing required parameters, invalid JSON, a non-object or absurd nesting are refused
    with a reason, never an internal error."""
    assert reason_of(SPEC.validate, raw) == reason


def test_method_description_lists_params_and_kind() -> None:
    """The catalogue describes a method's scope, kind, parameters with their limits."""
    described = SPEC.describe()
    assert (described["scope"], described["kind"]) == ("points.write", "write")
    points = next(p for p in described["params"] if p["name"] == "points")
    assert points == {"name": "points", "type": "integer", "required": True,
                      "description": "how many", "minimum": 1}
    assert next(p for p in described["params"] if p["name"] == "reason")["default"] == "isv"


# --- the wire protocol ---------------------------------------------------------------------

PARAMS = {"method": "brandclub.member.get", "app_key": "AK", "timestamp": "2026-03-01 20:00:00",
          "v": "2.0", "360buy_param_json": '{"name":"张三"}', "sign": "ignored"}


def test_sign_base_sorts_keys_and_leaves_out_the_sign() -> None:
    """The signed text is secret + sorted key/value pairs without `sign` + secret."""
    base = openplatform.sign_base("S", {"b": "2", "a": "1", "sign": "x"})
    assert base == "Sa1b2S"


def test_sign_is_upper_hex_md5_and_matches_case_insensitively() -> None:
    """The sign is 32 upper-case hex; lower case and surrounding spaces still match."""
    sign = openplatform.compute_sign("secret", PARAMS)
    assert len(sign) == 32 and sign == sign.upper()
    assert openplatform.sign_matches("secret", PARAMS, f" {sign.lower()} ")
    assert not openplatform.sign_matches("other", PARAMS, sign)
    assert not openplatform.sign_matches("secret", PARAMS, "签" * 32)


def test_a_latin1_signature_of_latin1_text_is_accepted() -> None:
    """The official SDK signs latin-1 bytes; for text latin-1 can encode that is accepted."""
    params = {**PARAMS, "360buy_param_json": '{"name":"José"}'}
    latin = openplatform.compute_sign("secret", params, encoding="latin-1")
    assert latin != openplatform.compute_sign("secret", params)
    assert openplatform.sign_matches("secret", params, latin)


@pytest.mark.parametrize("raw, expected", [
    ("2026-03-01 20:00:00", datetime(2026, 3, 1, 12, 0, tzinfo=UTC)),
    ("2026-03-01 20:00:00.000+0800", datetime(2026, 3, 1, 12, 0, tzinfo=UTC)),
    ("2026-03-01 12:00:00.5+00:00", datetime(2026, 3, 1, 12, 0, 0, 500_000, tzinfo=UTC)),
    ("2026-03-01 07:00:00-0500", datetime(2026, 3, 1, 12, 0, tzinfo=UTC)),
])
def test_timestamps_default_to_beijing_and_honour_offsets(raw: str, expected: datetime) -> None:
    """No offset means UTC+8; an explicit offset and fractions of a second are honoured."""
    assert openplatform.parse_timestamp(raw) == expected


@pytest.mark.parametrize("raw", ["2026-02-30 10:00:00", "yesterday", "2026-03-01T20:00:00",
                                 "2026-03-01 20:00:00+1500"])
def test_impossible_timestamps_are_protocol_errors(raw: str) -> None:
    """A date that does not exist, another format or an offset beyond 14 hours is code 8."""
    with pytest.raises(openplatform.ProtocolError) as error:
        openplatform.parse_timestamp(raw)
    assert error.value.error is openplatform.INVALID_TIMESTAMP


def test_envelopes_use_the_marketplace_spelling() -> None:
    """Success sits under `<method>_responce` / `<last segment>_result`; errors carry code,
    Chinese and English descriptions with the detail."""
    assert openplatform.success_envelope("brandclub.member.get", {"x": 1}) == {
        "brandclub_member_get_responce": {"code": "0", "get_result": {"x": 1}}}
    body = openplatform.ProtocolError(openplatform.INVALID_SIGN, "detail").body()
    assert body["error_response"]["code"] == "12"
    assert body["error_response"]["en_desc"] == "invalid sign: detail"
    assert openplatform.business_failure("R", "m", {"k": "v"})["success"] is False
    assert openplatform.business_result({"a": 1})["data"] == {"a": 1}


def test_error_codes_are_unique() -> None:
    """No two errors answer with the same code."""
    codes = [error.code for error in openplatform.ERROR_CODES]
    assert len(codes) == len(set(codes))
