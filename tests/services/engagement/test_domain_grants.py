"""Pure rules of `domain/grants.py`: a reward owed starts pending and untried."""

from __future__ import annotations

from services.engagement.domain.grants import Grant


def test_a_grant_just_owed_is_pending_untried_and_unpaid() -> None:
    """Grant.owed: pending, no attempt yet, no ledger entry or coupon, nothing to refund."""
    grant = Grant.owed("g_1", "brd_1", "acc_1", 5, "tpl_1", "SIGN_IN_REWARD")
    assert (grant.grant_id, grant.brand_id, grant.account_id) == ("g_1", "brd_1", "acc_1")
    assert (grant.points, grant.coupon_template_id, grant.reason_code) == (
        5, "tpl_1", "SIGN_IN_REWARD")
    assert (grant.state, grant.attempts) == ("pending", 0)
    assert (grant.points_entry_id, grant.coupon_id, grant.last_error) == ("", "", "")
    assert (grant.refund_entry_id, grant.refunded_entry_id, grant.updated_at) == ("", "", None)
