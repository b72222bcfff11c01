"""The gateway's settings: the common ones (it opens no database) plus the marketplace
webhook secret."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from libs.config import Env, Settings, load_settings


@dataclass(frozen=True)
class GatewaySettings:
    common: Settings
    # MARKETPLACE_WEBHOOK_SECRET: HMAC secret the marketplace signs its facts with.
    marketplace_webhook_secret: bytes = field(repr=False)


def gateway_settings(common: Settings) -> GatewaySettings:
    """The gateway settings, read from the same variables as `common`."""
    env = Env(common.environment)
    return GatewaySettings(common=common,
                           marketplace_webhook_secret=env.secret("MARKETPLACE_WEBHOOK_SECRET"))


def load_gateway_settings(source: Mapping[str, str] | None = None) -> GatewaySettings:
    return gateway_settings(load_settings("gateway", source, database=False))
