"""A brand's channel configurations (credentials stay sealed here)."""

from __future__ import annotations

import json

from libs.db import Connection
from services.messaging.domain.channels import Channel, ChannelConfig, ProviderKind


class ChannelsRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def upsert_channel(self, config: ChannelConfig, sealed: bytes) -> None:
        await self.conn.execute(
            "INSERT INTO channel_configs (brand_id, channel, provider, settings, "
            "credential_names, credentials, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (brand_id, channel) DO UPDATE SET provider = EXCLUDED.provider, "
            "settings = EXCLUDED.settings, credential_names = EXCLUDED.credential_names, "
            "credentials = EXCLUDED.credentials, updated_at = EXCLUDED.updated_at",
            config.brand_id, config.channel.value, config.provider.value,
            json.dumps(config.settings), config.credential_names, sealed, config.updated_at)

    async def channels(self, brand_id: str, *, after: str = "",
                       limit: int | None = None) -> list[tuple[ChannelConfig, bytes]]:
        """The brand's channels by channel name, after `after`, at most `limit` (None: all)."""
        rows = await self.conn.fetch(
            "SELECT * FROM channel_configs WHERE brand_id = $1 AND channel > $2 "
            "ORDER BY channel LIMIT $3", brand_id, after, limit)
        return [(ChannelConfig(r["brand_id"], Channel(r["channel"]), ProviderKind(r["provider"]),
                               json.loads(r["settings"]), list(r["credential_names"]),
                               r["updated_at"]), bytes(r["credentials"])) for r in rows]
