"""The open-platform wire protocol as pure functions: sign, timestamps, envelopes, params."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from libs.errors import InvalidArgument
from services.gateway.api.openplatform_methods import METHODS
from services.gateway.domain import openplatform as proto
from services.gateway.domain.catalogue import MethodSpec, Param
from services.identity.isv.domain.apps import KNOWN_SCOPES

VECTOR = {"app_key": "testkey", "v": "2.0", "method": "jingdong.pop.crm.getCustomerPoints",
          "timestamp": "2024-05-01 12:00:00.000+0800", "access_token": "tok",
          "360buy_param_json": '{"customer_pin": "abc"}'}


def test_known_answer_vector() -> None:
    """The brief's known-answer vector signs to 3FF8E3770112BDD89DAE64D7EB8B1D67."""
    assert proto.compute_sign("testsecret", VECTOR) == "3FF8E3770112BDD89DAE64D7EB8B1D67"
    assert proto.sign_matches("testsecret", {**VECTOR, "sign": "x"},
                              "3ff8e3770112bdd89dae64d7eb8b1d67")
    assert not proto.sign_matches("othersecret", VECTOR, "3FF8E3770112BDD89DAE64D7EB8B1D67")


def test_chinese_is_signed_over_utf8() -> None:
    """A UTF-8 client's signature over Chinese text verifies; a changed character does not."""
    params = {**VECTOR, "360buy_param_json": '{"name": "会员张三"}'}
    sign = proto.compute_sign("s", params)
    assert proto.sign_matches("s", params, sign)
    assert not proto.sign_matches("s", {**params, "360buy_param_json": '{"name": "会员张四"}'},
                                  sign)


def test_timestamp_formats() -> None:
    """SDK timestamps carry an offset; offset-less ones are Beijing time; junk is code 8."""
    expected = datetime(2024, 5, 1, 4, 0, tzinfo=UTC)
    assert proto.parse_timestamp("2024-05-01 12:00:00.000+0800") == expected
    assert proto.parse_timestamp("2024-05-01 04:00:00.000+0000") == expected
    assert proto.parse_timestamp("2024-05-01 12:00:00") == expected
    for junk in ("2024-05-01T12:00:00", "yesterday", "2024-13-01 12:00:00", "",
                 "2024-05-01 12:00:00.000+9900"):
        with pytest.raises(proto.ProtocolError) as error:
            proto.parse_timestamp(junk)
        assert error.value.error.code == "8"


def test_timestamp_window_is_six_minutes() -> None:
    """Five minutes of skew is accepted, seven minutes is refused with code 8."""
    now = datetime(2024, 5, 1, 4, 0, tzinfo=UTC)
    proto.check_timestamp("2024-05-01 12:05:00.000+0800", now)
    proto.check_timestamp("2024-05-01 11:55:00", now)
    with pytest.raises(proto.ProtocolError) as error:
        proto.check_timestamp("2024-05-01 11:53:00.000+0800", now)
    assert error.value.error.code == "8"


def test_envelopes() -> None:
    """Success is `<method_underscored>_responce` with code "0"; errors carry string codes."""
    body = proto.success_envelope("brandclub.member.get", {"success": True})
    assert body == {"brandclub_member_get_responce": {"code": "0",
                                                      "get_result": {"success": True}}}
    error = proto.ProtocolError(proto.INVALID_SIGN).body()["error_response"]
    assert error["code"] == "12" and error["en_desc"] and error["zh_desc"]
    codes = [e.code for e in proto.ERROR_CODES]
    assert len(codes) == len(set(codes)) and all(isinstance(c, str) for c in codes)


def test_params_are_typed_and_named_in_errors() -> None:
    """Wrong types, missing fields and bad JSON name the field; quoted integers are accepted."""
    spec = MethodSpec("x.y.z", "member.read", "", False, (
        Param("account_id", "string", "", required=True),
        Param("points", "integer", "", required=True, minimum=1, maximum=10)))
    assert spec.validate('{"account_id": "a", "points": "3"}') == {"account_id": "a",
                                                                   "points": 3}
    cases = {'{"points": 1}': "account_id", '{"account_id": 5, "points": 1}': "account_id",
             '{"account_id": "a", "points": true}': "points",
             '{"account_id": "a", "points": 11}': "points", "[1]": "360buy_param_json",
             "{not json": "360buy_param_json"}
    for raw, field in cases.items():
        with pytest.raises(InvalidArgument) as error:
            spec.validate(raw)
        assert error.value.field == field, raw


def test_catalogue_scopes_are_known_to_identity() -> None:
    """Every method names a scope that identity lets shops grant."""
    assert METHODS
    for spec, _ in METHODS.values():
        assert spec.scope in KNOWN_SCOPES, spec.name
        assert spec.name.startswith("brandclub.")


def test_docs_render_the_current_catalogue() -> None:
    """docs/open-platform.md holds the catalogue as the gateway serves it (run
    `python -m services.gateway.catalogue_doc` after changing a method)."""
    from services.gateway.catalogue_doc import DOC, current_generated_part, render

    assert current_generated_part(DOC.read_text()) == render()
