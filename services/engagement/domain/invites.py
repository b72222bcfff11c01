"""An invite accepted: an invitee who joined the brand with an inviter's code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class AcceptedInvite:
    invitee_account_id: str
    # False when the inviter had reached the activity's cap of rewarded invites.
    inviter_rewarded: bool
    accepted_at: datetime
