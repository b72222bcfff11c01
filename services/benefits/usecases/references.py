"""References in the brand's benefits configuration that point into other services, checked
before a change is saved (references inside benefits, such as gift-pack and mall-item coupon
templates, are checked in the same transaction by usecases.config)."""

from __future__ import annotations

from libs.errors import InvalidArgument, require
from services.benefits.domain.benefits import EarningRule
from services.benefits.ports import ActivitiesPort


async def check_rule_references(activities: ActivitiesPort, rule: EarningRule) -> None:
    """An earning rule limited to one activity names an activity of its own brand: another
    brand's id reads as absent in engagement and is refused the same way."""
    brand_id = require(rule.brand_id, "rule.brand_id")
    activity_id = rule.activity_id.strip()
    if activity_id and not await activities.activity_exists(brand_id, activity_id):
        raise InvalidArgument("rule.activity_id names no activity of this brand",
                              field="rule.activity_id", reason="ACTIVITY_NOT_FOUND",
                              metadata={"activity_id": activity_id})
