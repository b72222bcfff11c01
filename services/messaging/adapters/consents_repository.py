"""Members' consent per channel and purpose."""

from __future__ import annotations

from datetime import datetime

from libs.db import Connection
from services.messaging.domain.channels import Channel, Consent, Purpose


class ConsentsRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def set_consent(self, brand_id: str, account_id: str, channel: Channel,
                          purpose: Purpose, granted: bool, source: str, now: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO consents (brand_id, account_id, channel, purpose, granted, source, "
            "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (brand_id, account_id, channel, purpose) DO UPDATE SET "
            "granted = EXCLUDED.granted, source = EXCLUDED.source, "
            "updated_at = EXCLUDED.updated_at",
            brand_id, account_id, channel.value, purpose.value, granted, source, now)

    async def set_consent_unless_newer(self, brand_id: str, account_id: str, channel: Channel,
                                       purpose: Purpose, granted: bool, source: str,
                                       at: datetime) -> None:
        """Record a decision made at `at` unless a later one is already recorded (an event
        delivered late never undoes what the member decided afterwards)."""
        await self.conn.execute(
            "INSERT INTO consents (brand_id, account_id, channel, purpose, granted, source, "
            "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (brand_id, account_id, channel, purpose) DO UPDATE SET "
            "granted = EXCLUDED.granted, source = EXCLUDED.source, "
            "updated_at = EXCLUDED.updated_at WHERE consents.updated_at <= EXCLUDED.updated_at",
            brand_id, account_id, channel.value, purpose.value, granted, source, at)

    async def consents(self, brand_id: str, account_id: str, *,
                       after: tuple[str, str] = ("", ""), limit: int | None = None
                       ) -> list[Consent]:
        """The member's consents by (channel, purpose), after `after`, at most `limit`."""
        rows = await self.conn.fetch(
            "SELECT * FROM consents WHERE brand_id = $1 AND account_id = $2 "
            "AND (channel, purpose) > ($3, $4) ORDER BY channel, purpose LIMIT $5",
            brand_id, account_id, after[0], after[1], limit)
        return [Consent(r["brand_id"], r["account_id"], Channel(r["channel"]),
                        Purpose(r["purpose"]), r["granted"], r["source"], r["updated_at"])
                for r in rows]

    async def consent_map(self, brand_id: str, accounts: list[str]
                          ) -> dict[tuple[str, str, str], bool]:
        rows = await self.conn.fetch(
            "SELECT account_id, channel, purpose, granted FROM consents "
            "WHERE brand_id = $1 AND account_id = ANY($2)", brand_id, accounts)
        return {(r["account_id"], r["channel"], r["purpose"]): r["granted"] for r in rows}
