"""A brand's channels, its sending policy and members' consent."""

from __future__ import annotations

from datetime import datetime

from libs.db import Connection, Record
from libs.errors import InvalidArgument, require
from services.messaging.adapters.channels_repository import ChannelsRepository
from services.messaging.adapters.consents_repository import ConsentsRepository
from services.messaging.adapters.crypto import CredentialCipher
from services.messaging.adapters.policy_repository import PolicyRepository
from services.messaging.domain.channels import (
    Channel,
    ChannelConfig,
    ProviderKind,
    Purpose,
    validate_channel_config,
)
from services.messaging.domain.governance import Policy, validate_policy

MAX_SOURCE_LENGTH = 64


async def configure_channel(conn: Connection, cipher: CredentialCipher, brand_id: str,
                            channel: Channel, provider: ProviderKind, settings: dict[str, str],
                            credentials: dict[str, str], now: datetime) -> ChannelConfig:
    brand_id = require(brand_id, "brand_id")
    validate_channel_config(channel, provider, settings, credentials)
    config = ChannelConfig(brand_id, channel, provider, dict(settings),
                           sorted(credentials), now)
    await ChannelsRepository(conn).upsert_channel(config, cipher.seal(brand_id, credentials))
    return config


async def list_channels(conn: Connection, brand_id: str) -> list[ChannelConfig]:
    return [config for config, _ in
            await ChannelsRepository(conn).channels(require(brand_id, "brand_id"))]


async def set_policy(conn: Connection, policy: Policy, now: datetime) -> Policy:
    require(policy.brand_id, "policy.brand_id")
    await PolicyRepository(conn).upsert_policy(validate_policy(policy), now)
    return policy


async def get_policy(conn: Connection, brand_id: str) -> Policy:
    return await PolicyRepository(conn).policy(require(brand_id, "brand_id"))


async def set_consent(conn: Connection, brand_id: str, account_id: str, channel: Channel,
                      purpose: Purpose, granted: bool, source: str, now: datetime) -> Record:
    brand_id, account_id = require(brand_id, "brand_id"), require(account_id, "account_id")
    source = require(source, "source")
    if len(source) > MAX_SOURCE_LENGTH:
        raise InvalidArgument("source must be at most 64 characters", field="source",
                              reason="SOURCE_TOO_LONG")
    consents = ConsentsRepository(conn)
    await consents.set_consent(brand_id, account_id, channel, purpose, granted, source, now)
    rows = [r for r in await consents.consents(brand_id, account_id)
            if r["channel"] == channel.value and r["purpose"] == purpose.value]
    return rows[0]


async def list_consents(conn: Connection, brand_id: str, account_id: str) -> list[Record]:
    return await ConsentsRepository(conn).consents(require(brand_id, "brand_id"),
                                                   require(account_id, "account_id"))
