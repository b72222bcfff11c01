"""The benefits service's settings: the common ones plus its job timings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from libs.config import Env, Settings, load_settings


@dataclass(frozen=True)
class BenefitsSettings:
    common: Settings
    # Expiry, release and recovery passes run this often.
    job_interval_seconds: float
    # A redemption still pending after this long is recovered (completed or refunded).
    redemption_recovery_after_seconds: float


def benefits_settings(common: Settings) -> BenefitsSettings:
    """The benefits settings, read from the same variables as `common`."""
    env = Env(common.environment)
    return BenefitsSettings(
        common=common,
        job_interval_seconds=env.number("BENEFITS_JOB_INTERVAL_SECONDS", 5.0, minimum=0.05),
        redemption_recovery_after_seconds=env.number(
            "BENEFITS_REDEMPTION_RECOVERY_AFTER_SECONDS", 30.0),
    )


def load_benefits_settings(source: Mapping[str, str] | None = None) -> BenefitsSettings:
    return benefits_settings(load_settings("benefits", source))
