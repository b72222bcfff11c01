"""Engagement: the use cases the servicer and the background loops hold, in one object. Each
concept lives in its own module; this class only joins them."""

from __future__ import annotations

from services.engagement.usecases.activities import ActivityDefinitions
from services.engagement.usecases.koi import KoiReveals
from services.engagement.usecases.sign_in import SignIns
from services.engagement.usecases.social import SocialActivities


class Engagement(ActivityDefinitions, SignIns, KoiReveals, SocialActivities):
    """One coroutine per RPC, each owning its whole flow; each step is idempotent and
    resumable."""
