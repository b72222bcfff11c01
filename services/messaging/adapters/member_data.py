"""What messaging holds about a member (libs.privacy holdings): exported on an access request,
erased or pseudonymised when the member cancels (in the MemberCancelled consumer).

Order matters on cancellation: sandbox deliveries are found through the member's outbound
messages, so they are scrubbed before those messages are pseudonymised."""

from __future__ import annotations

from libs.privacy import Action, Holding

_MEMBER = "brand_id = $1 AND account_id = $2"
_MESSAGES = "SELECT message_id FROM outbound_messages WHERE brand_id = $1 AND account_id = $2"

HOLDINGS = (
    Holding("inbox_messages", _MEMBER, Action.ERASE, section="inbox",
            description="Messages in the member's message box.",
            order_by="created_at, message_id"),
    Holding("consents", _MEMBER, Action.KEEP, section="consents",
            description="The member's consent and opt-out per channel and purpose.",
            order_by="channel, purpose",
            keep_reason="evidence of each consent and opt-out decision (PIPL art. 14, GDPR "
                        "art. 7(1)); nothing is sent to a cancelled member, and the decisions "
                        "still apply if the account rejoins"),
    Holding("cancelled_members", _MEMBER, Action.KEEP, section="cancellation",
            description="When the member left: nothing is sent to them until they rejoin.",
            order_by="cancelled_at",
            keep_reason="the suppression itself: it is what stops every message to the "
                        "account after cancellation"),
    Holding("sandbox_deliveries", f"brand_id = $1 AND message_id IN ({_MESSAGES})",
            Action.ERASE, section="sandbox_deliveries",
            description="What the sandbox channel recorded as delivered (address masked).",
            order_by="created_at, delivery_id",
            scrub="masked_address = '', title = '', body = '', params = '{}'::jsonb"),
    Holding("outbound_messages", _MEMBER, Action.PSEUDONYMISE, section="deliveries",
            description="Messages sent or suppressed to the member, with status and reason.",
            order_by="created_at, message_id",
            hidden=("dedupe_key", "lease_until", "spacing_ms", "cap_day", "cap_week"),
            pseudonymise="account_id = $3, variables = '{}'::jsonb, "
                         "dedupe_key = replace(dedupe_key, $2, $3)"),
    Holding("cap_counters", _MEMBER, Action.ERASE, section="frequency_caps",
            description="Marketing messages counted against the member's daily and weekly caps.",
            order_by="channel, period, period_start"),
    Holding("campaign_recipients",
            "campaign_id IN (SELECT campaign_id FROM campaigns WHERE brand_id = $1) "
            "AND account_id = $2", Action.PSEUDONYMISE, section="campaigns",
            description="Campaigns the member was chosen for (or held out of, for measurement).",
            order_by="campaign_id"),
    Holding("journey_runs", _MEMBER, Action.PSEUDONYMISE, section="journeys",
            description="The member's walks through the brand's journeys.",
            order_by="entered_at, run_id", hidden=("wake_at", "attempts"),
            pseudonymise="account_id = $3, facts = '{}'::jsonb"),
    Holding("journey_entries",
            "journey_id IN (SELECT journey_id FROM journeys WHERE brand_id = $1) "
            "AND account_id = $2", Action.PSEUDONYMISE),
    # A projection of membership's orders (exported there) for campaign conversions.
    Holding("member_orders", _MEMBER, Action.PSEUDONYMISE),
)
