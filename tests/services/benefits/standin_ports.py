"""Stand-ins for benefits' ports (membership, engagement activities), for the benefits tests
of other rules (ledger, stock, mall saga): every account is an active LV0 member of every
brand unless a test says otherwise. The eligibility rule itself is tested against the real
membership service (test_benefits_eligibility.py)."""

from __future__ import annotations

from services.benefits.domain.eligibility import Membership, Standing


class StandInMembership:
    def __init__(self) -> None:
        self._members: dict[tuple[str, str], Membership] = {}

    def set(self, brand_id: str, account_id: str, *, level: int = 0,
            standing: Standing = Standing.ACTIVE) -> None:
        self._members[(brand_id, account_id)] = Membership(standing, level)

    async def membership(self, brand_id: str, account_id: str) -> Membership:
        return self._members.get((brand_id, account_id), Membership(Standing.ACTIVE, 0))


class StandInActivities:
    """Every activity an earning rule names exists (the check of saved references is tested
    against the real engagement service, in tests/services/test_config_references.py)."""

    async def activity_exists(self, brand_id: str, activity_id: str) -> bool:
        return True
