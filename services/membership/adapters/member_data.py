"""What membership holds about a member (libs.privacy holdings): exported on an access request,
erased or pseudonymised in the cancellation's own transaction.

The cancellation already empties the profile columns of the membership (birthday, gender,
phone flags, CRM id: `MemberRepository.scrub_and_end`); the `members` holding repeats that
scrub over every ended membership of the account so the report says it, and the rest takes the
member out of what the brand still reads: segment snapshots, behaviours, statistics."""

from __future__ import annotations

from libs.privacy import Action, Holding

_MEMBER = "brand_id = $1 AND account_id = $2"
_PROFILE_SCRUB = ("birthday = NULL, gender = 'unknown', baby_birthday = NULL, has_phone = false, "
                  "encrypted_phone = '', crm_member_id = '', phone_match = 'not_applicable', "
                  "invite_code = ''")

HOLDINGS = (
    Holding("members", f"{_MEMBER} AND status = 'ended'", Action.ERASE, scrub=_PROFILE_SCRUB),
    Holding("members", _MEMBER, Action.KEEP, section="memberships",
            description="The member's memberships of the brand: card, level, profile, consent.",
            order_by="member_since, member_id", hidden=("encrypted_phone", "lv0_notice_pending"),
            keep_reason="the membership record itself (ids, status, dates, end reason: the "
                        "profile is scrubbed above); a later join is a new membership"),
    Holding("member_consents", _MEMBER, Action.KEEP, section="consents",
            description="Consent to the program's terms and purposes, and its withdrawal.",
            order_by="consented_at",
            keep_reason="evidence of consent and of its withdrawal on cancellation (PIPL "
                        "art. 14, GDPR art. 7(1))"),
    Holding("follows", _MEMBER, Action.KEEP, section="follows",
            description="Shops of the brand the shopper follows on the marketplace.",
            order_by="followed_at, shop_id",
            keep_reason="following a shop is the shopper's marketplace choice, ended by "
                        "unfollowing (MemberUnfollowed), not by leaving the card"),
    Holding("orders", _MEMBER, Action.PSEUDONYMISE, section="orders",
            description="Orders paid in the brand's shops, with refunds.",
            order_by="paid_at, order_id"),
    Holding("member_stats", _MEMBER, Action.ERASE, section="order_statistics",
            description="Order count and amount paid, for tiers and segments.",
            order_by="account_id"),
    Holding("member_behaviours", _MEMBER, Action.ERASE, section="behaviours",
            description="Follows, cart additions and purchases, for segments.",
            order_by="occurred_at, kind"),
    Holding("member_points", _MEMBER, Action.ERASE,
            # A projection of benefits' balance (exported there) for segments.
            ),
    Holding("member_dormancy_changes", _MEMBER, Action.PSEUDONYMISE, section="dormancy",
            description="When the membership became dormant or valid again, and why.",
            order_by="changed_at, seq", hidden=("seq",)),
    Holding("segment_snapshot_members",
            "snapshot_id IN (SELECT snapshot_id FROM segment_snapshots WHERE brand_id = $1) "
            "AND account_id = $2", Action.ERASE, section="segment_snapshots",
            description="The brand's fixed member lists (for campaigns) that include the member.",
            order_by="snapshot_id"),
    Holding("account_states", "$1::text <> '' AND account_id = $2", Action.KEEP,
            keep_reason="the account's marketplace state (abnormal, last active), shared by "
                        "every brand and not part of one brand's membership"),
)
