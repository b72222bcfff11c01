"""The membership service's settings: the common ones plus its job intervals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from libs.config import Env, Settings, load_settings


@dataclass(frozen=True)
class MembershipSettings:
    common: Settings
    # How often every brand's tiers and dormancy are evaluated.
    evaluation_interval_seconds: float
    # How often the dashboards' daily figures are refreshed.
    dashboard_refresh_interval_seconds: float


def membership_settings(common: Settings) -> MembershipSettings:
    """The membership settings, read from the same variables as `common`."""
    env = Env(common.environment)
    return MembershipSettings(
        common=common,
        evaluation_interval_seconds=env.number("MEMBER_EVALUATION_INTERVAL_SECONDS", 3600.0,
                                               minimum=1.0),
        dashboard_refresh_interval_seconds=env.number("DASHBOARD_REFRESH_INTERVAL_SECONDS",
                                                      900.0, minimum=1.0),
    )


def load_membership_settings(source: Mapping[str, str] | None = None) -> MembershipSettings:
    return membership_settings(load_settings("membership", source))
