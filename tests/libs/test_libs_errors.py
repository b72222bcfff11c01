"""libs.errors.found: the one get-or-NotFound."""

from __future__ import annotations

import pytest

from libs.errors import Code, NotFound, found


def test_found_returns_a_present_value_unchanged() -> None:
    assert found(0, "counter c_1", reason="COUNTER_NOT_FOUND") == 0
    assert found("x", "thing", reason="THING_NOT_FOUND") == "x"


def test_found_refuses_none_naming_what_and_why() -> None:
    with pytest.raises(NotFound) as caught:
        found(None, "activity act_1", reason="ACTIVITY_NOT_FOUND", activity_id="act_1")
    assert caught.value.code is Code.NOT_FOUND
    assert caught.value.message == "activity act_1 does not exist"
    assert caught.value.reason == "ACTIVITY_NOT_FOUND"
    assert caught.value.metadata == {"activity_id": "act_1"}
