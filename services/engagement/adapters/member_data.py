"""What engagement holds about a member (libs.privacy holdings): exported on an access request,
erased or pseudonymised when the member cancels (in the MemberCancelled consumer).

Participation (sign-ins, votes, quizzes, draws) stays for the activity's statistics and
tallies, under a pseudonym; rewards already won are still delivered, so they stay under the
account, as benefits keeps the points they land in."""

from __future__ import annotations

from libs.privacy import Action, Holding

_MEMBER = "brand_id = $1 AND account_id = $2"
_REWARDS_OWED = ("a reward won before leaving is still delivered (retried until done or "
                 "failed) to the account, whose points benefits keeps frozen")

HOLDINGS = (
    Holding("sign_ins", _MEMBER, Action.PSEUDONYMISE, section="sign_ins",
            description="Daily sign-ins, streaks and make-ups.",
            order_by="activity_id, local_date"),
    Holding("votes", _MEMBER, Action.PSEUDONYMISE, section="votes",
            description="Votes cast (the option chosen and when).",
            order_by="activity_id, voted_at, seq"),
    Holding("quiz_attempts", _MEMBER, Action.PSEUDONYMISE, section="quizzes",
            description="Quiz attempts with the answers given and the score.",
            order_by="activity_id, attempt"),
    Holding("lottery_draws", _MEMBER, Action.PSEUDONYMISE, section="draws",
            description="Lottery draws: the prize drawn and the prize won.",
            order_by="drawn_at, draw_id", hidden=("random_value", "total_weight", "weights")),
    Holding("draw_sagas", _MEMBER, Action.KEEP,
            keep_reason="a draw in flight finishes, or gives back the points it spent, to the "
                        "account; a finished one holds only ids and states"),
    Holding("koi_entries",
            "activity_id IN (SELECT activity_id FROM koi_draws WHERE brand_id = $1) "
            "AND account_id = $2", Action.KEEP, section="koi_entries",
            description="Entries into koi draws.", order_by="activity_id",
            keep_reason="a koi draw is verifiable from its committed seed and the entry list; "
                        "changing the list would change who won"),
    Holding("invite_codes", _MEMBER, Action.ERASE, section="invite_codes",
            description="The member's own invite codes.", order_by="created_at, code"),
    Holding("invites", "brand_id = $1 AND inviter_account_id = $2", Action.PSEUDONYMISE,
            section="invites_sent", description="Friends who joined with the member's code.",
            order_by="accepted_at", hidden=("invitee_account_id",),
            pseudonymise="inviter_account_id = $3"),
    Holding("invites", "brand_id = $1 AND invitee_account_id = $2", Action.KEEP,
            section="invite_accepted", description="The invite the member joined with.",
            order_by="accepted_at", hidden=("inviter_account_id",),
            keep_reason="an account is invited once per brand: rejoining must not pay the "
                        "inviter a second reward"),
    Holding("reward_grants", _MEMBER, Action.KEEP, section="rewards",
            description="Rewards won (points, coupons) and their delivery.",
            order_by="created_at, grant_id",
            hidden=("attempts", "last_error", "next_attempt_at"), keep_reason=_REWARDS_OWED),
)
