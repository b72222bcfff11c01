"""Engagement: the use cases that cross services or Redis, in one object the servicer and
the background loops hold. Each concept lives in its own module; this class only joins them."""

from __future__ import annotations

from services.engagement.usecases.koi import KoiReveals
from services.engagement.usecases.lottery import LotteryDraws
from services.engagement.usecases.sign_in import SignIns
from services.engagement.usecases.social import SocialActivities


class Engagement(SignIns, LotteryDraws, KoiReveals, SocialActivities):
    """Use cases that cross services or Redis; each step is idempotent and resumable."""
