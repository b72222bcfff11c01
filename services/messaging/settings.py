"""The messaging service's settings: the common ones plus the key that seals provider
credentials."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from libs.config import Env, Settings, load_settings


@dataclass(frozen=True)
class MessagingSettings:
    common: Settings
    # MESSAGING_CREDENTIALS_KEY: AES-GCM key sealing each brand's provider credentials.
    credentials_key: bytes = field(repr=False)


def messaging_settings(common: Settings) -> MessagingSettings:
    """The messaging settings, read from the same variables as `common`."""
    env = Env(common.environment)
    return MessagingSettings(common=common,
                             credentials_key=env.secret("MESSAGING_CREDENTIALS_KEY"))


def load_messaging_settings(source: Mapping[str, str] | None = None) -> MessagingSettings:
    return messaging_settings(load_settings("messaging", source))
