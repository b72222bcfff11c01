"""The engagement service's settings. It reads no variable of its own today (its clock, saga
grace and loop period are composition parameters); the object exists so that every service
is composed from its settings the same way, and a new setting has one place to go."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from libs.config import Settings, load_settings


@dataclass(frozen=True)
class EngagementSettings:
    common: Settings


def engagement_settings(common: Settings) -> EngagementSettings:
    return EngagementSettings(common=common)


def load_engagement_settings(source: Mapping[str, str] | None = None) -> EngagementSettings:
    return engagement_settings(load_settings("engagement", source))
