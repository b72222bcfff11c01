"""A brand's channels, its sending policy and members' consent."""

from __future__ import annotations

from libs.db import Connection
from libs.errors import InvalidArgument, require
from libs.idempotency import CommitOnce, Reply
from libs.paging import decode_page_token, keyset_page, page_size
from services.messaging.adapters.channels_repository import ChannelsRepository
from services.messaging.adapters.consents_repository import ConsentsRepository
from services.messaging.adapters.policy_repository import PolicyRepository
from services.messaging.domain.channels import (
    Channel,
    ChannelConfig,
    Consent,
    ProviderKind,
    Purpose,
    validate_channel_config,
)
from services.messaging.domain.governance import Policy, validate_policy
from services.messaging.usecases.context import MessagingContext

MAX_SOURCE_LENGTH = 64


async def configure_channel(app: MessagingContext,
                            commit_once: CommitOnce[ChannelConfig, Reply], brand_id: str,
                            channel: Channel, provider: ProviderKind, settings: dict[str, str],
                            credentials: dict[str, str]) -> Reply:
    async def save(conn: Connection) -> ChannelConfig:
        brand = require(brand_id, "brand_id")
        validate_channel_config(channel, provider, settings, credentials)
        config = ChannelConfig(brand, channel, provider, dict(settings), sorted(credentials),
                               app.clock())
        await ChannelsRepository(conn).upsert_channel(config,
                                                      app.cipher.seal(brand, credentials))
        return config

    return await commit_once(save)


async def list_channels(app: MessagingContext, brand_id: str, requested_size: int,
                        token: str) -> tuple[list[ChannelConfig], str]:
    """One page of the brand's channels, by channel name."""
    filters = {"brand_id": require(brand_id, "brand_id")}
    size = page_size(requested_size)
    position = decode_page_token(token, ("channel",), filters=filters)
    async with app.db.connection() as conn:
        rows = await ChannelsRepository(conn).channels(
            brand_id, after=str(position["channel"]) if position else "", limit=size + 1)
    return keyset_page([config for config, _ in rows], size,
                       lambda c: {"channel": c.channel.value}, filters=filters)


async def set_policy(app: MessagingContext, commit_once: CommitOnce[Policy, Reply],
                     policy: Policy) -> Reply:
    async def save(conn: Connection) -> Policy:
        require(policy.brand_id, "policy.brand_id")
        await PolicyRepository(conn).upsert_policy(validate_policy(policy), app.clock())
        return policy

    return await commit_once(save)


async def get_policy(app: MessagingContext, brand_id: str) -> Policy:
    async with app.db.connection() as conn:
        return await PolicyRepository(conn).policy(require(brand_id, "brand_id"))


async def set_consent(app: MessagingContext, commit_once: CommitOnce[Consent, Reply],
                      brand_id: str, account_id: str, channel: Channel, purpose: Purpose,
                      granted: bool, source: str) -> Reply:
    async def save(conn: Connection) -> Consent:
        brand, account = require(brand_id, "brand_id"), require(account_id, "account_id")
        if len(require(source, "source")) > MAX_SOURCE_LENGTH:
            raise InvalidArgument("source must be at most 64 characters", field="source",
                                  reason="SOURCE_TOO_LONG")
        consents = ConsentsRepository(conn)
        await consents.set_consent(brand, account, channel, purpose, granted, source,
                                   app.clock())
        return next(c for c in await consents.consents(brand, account)
                    if c.channel is channel and c.purpose is purpose)

    return await commit_once(save)


async def list_consents(app: MessagingContext, brand_id: str, account_id: str,
                        requested_size: int, token: str) -> tuple[list[Consent], str]:
    """One page of the member's consents, by channel then purpose."""
    filters = {"brand_id": require(brand_id, "brand_id"),
               "account_id": require(account_id, "account_id")}
    size = page_size(requested_size)
    position = decode_page_token(token, ("channel", "purpose"), filters=filters)
    after = (str(position["channel"]), str(position["purpose"])) if position else ("", "")
    async with app.db.connection() as conn:
        rows = await ConsentsRepository(conn).consents(brand_id, account_id, after=after,
                                                       limit=size + 1)
    return keyset_page(rows, size,
                       lambda c: {"channel": c.channel.value, "purpose": c.purpose.value},
                       filters=filters)
