"""Who may take part: only the brand's live members, and of them only the levels an activity's
audience names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from libs.errors import PermissionDenied


@dataclass(frozen=True)
class MemberInfo:
    """What membership tells about a shopper of a brand."""

    level: int  # 0 = LV0, 1..n = card member's tier
    card_member: bool


def check_audience(levels: Sequence[int], member: MemberInfo | None) -> None:
    """Only live members take part; a non-empty audience names the levels allowed."""
    if member is None:
        raise PermissionDenied("the shopper is not a member of the brand",
                               reason="NOT_A_MEMBER")
    if levels and member.level not in levels:
        raise PermissionDenied("the member's level is not in the activity's audience",
                               reason="NOT_IN_AUDIENCE", metadata={"level": str(member.level)})
