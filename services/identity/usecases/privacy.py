"""Privacy requests in identity: what the account holds, exported for one brand's member
(MemberDataService). Identity erases nothing on a brand's cancellation: the account is the
shopper's across brands (services/identity/adapters/member_data.py)."""

from __future__ import annotations

from libs.db import Database
from libs.privacy import MemberPrivacy
from services.identity.adapters.member_data import HOLDINGS


def member_privacy(db: Database) -> MemberPrivacy:
    """ExportMemberData over identity's holdings."""
    return MemberPrivacy(db, HOLDINGS)
