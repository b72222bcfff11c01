"""Pure rules of `domain/audience.py`: who may take part in an activity."""

from __future__ import annotations

import pytest

from libs.errors import PermissionDenied
from services.engagement.domain.audience import MemberInfo, check_audience


def test_a_non_member_never_takes_part() -> None:
    """A shopper who is not a live member of the brand is refused NOT_A_MEMBER."""
    with pytest.raises(PermissionDenied) as refused:
        check_audience((), None)
    assert refused.value.reason == "NOT_A_MEMBER"


def test_an_open_audience_takes_every_member() -> None:
    """No levels named: LV0 and card members alike take part."""
    check_audience((), MemberInfo(level=0, card_member=False))
    check_audience((), MemberInfo(level=3, card_member=True))


@pytest.mark.parametrize(("level", "allowed"), [(0, False), (1, False), (2, True), (3, True),
                                                 (4, False)])
def test_named_levels_take_only_those_levels(level: int, allowed: bool) -> None:
    """An audience of levels 2 and 3 refuses every other level NOT_IN_AUDIENCE."""
    member = MemberInfo(level=level, card_member=level > 0)
    if allowed:
        check_audience((2, 3), member)
        return
    with pytest.raises(PermissionDenied) as refused:
        check_audience((2, 3), member)
    assert refused.value.reason == "NOT_IN_AUDIENCE"
    assert refused.value.metadata["level"] == str(level)
