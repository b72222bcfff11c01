"""asyncpg repository for the membership schema."""

from __future__ import annotations

from datetime import datetime

from libs.db import Connection, Record
from services.membership.domain.model import (
    Brand,
    Member,
    MemberCard,
    MemberStatus,
    ProgramMode,
    Shop,
)

_MEMBER_COLUMNS = ("member_id, brand_id, account_id, status, level, source_channel, "
                   "member_since, lv0_notice_pending")


def _brand(row: Record) -> Brand:
    return Brand(row["brand_id"], row["display_name"], ProgramMode(row["mode"]),
                 row["time_zone"], row["created_at"])


def _member(row: Record) -> Member:
    return Member(row["member_id"], row["brand_id"], row["account_id"],
                  MemberStatus(row["status"]), row["level"], row["source_channel"],
                  row["member_since"], row["lv0_notice_pending"])


class MembershipRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add_brand(self, brand: Brand) -> None:
        await self._conn.execute(
            "INSERT INTO brands (brand_id, display_name, mode, time_zone, created_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            brand.brand_id, brand.display_name, brand.mode.value, brand.time_zone,
            brand.created_at,
        )

    async def get_brand(self, brand_id: str) -> Brand | None:
        row = await self._conn.fetchrow("SELECT * FROM brands WHERE brand_id = $1", brand_id)
        return _brand(row) if row else None

    async def add_shop(self, shop: Shop) -> None:
        await self._conn.execute(
            "INSERT INTO shops (shop_id, brand_id, display_name, created_at) "
            "VALUES ($1, $2, $3, $4)",
            shop.shop_id, shop.brand_id, shop.display_name, shop.created_at,
        )

    async def get_shop(self, shop_id: str) -> Shop | None:
        row = await self._conn.fetchrow("SELECT * FROM shops WHERE shop_id = $1", shop_id)
        return Shop(row["shop_id"], row["brand_id"], row["display_name"],
                    row["created_at"]) if row else None

    async def lock_member_slot(self, brand_id: str, account_id: str) -> None:
        """Serialise changes to one shopper's membership of one brand until commit."""
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                                 f"member:{brand_id}:{account_id}")

    async def live_member(self, brand_id: str, account_id: str) -> Member | None:
        row = await self._conn.fetchrow(
            f"SELECT {_MEMBER_COLUMNS} FROM members "
            "WHERE brand_id = $1 AND account_id = $2 AND status <> 'ended'",
            brand_id, account_id,
        )
        return _member(row) if row else None

    async def add_member(self, member: Member) -> None:
        await self._conn.execute(
            f"INSERT INTO members ({_MEMBER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            member.member_id, member.brand_id, member.account_id, member.status.value,
            member.level, member.source_channel, member.member_since,
            member.lv0_notice_pending,
        )

    async def end_member(self, member_id: str, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE members SET status = 'ended', ended_at = $2, updated_at = $2 "
            "WHERE member_id = $1",
            member_id, now,
        )

    async def add_follow(self, brand_id: str, shop_id: str, account_id: str,
                         now: datetime) -> bool:
        added = await self._conn.fetchval(
            "INSERT INTO follows (brand_id, shop_id, account_id, followed_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
            brand_id, shop_id, account_id, now,
        )
        return bool(added)

    async def remove_follow(self, shop_id: str, account_id: str) -> bool:
        removed = await self._conn.fetchval(
            "DELETE FROM follows WHERE shop_id = $1 AND account_id = $2 RETURNING true",
            shop_id, account_id,
        )
        return bool(removed)

    async def count_follows(self, brand_id: str, account_id: str) -> int:
        count = await self._conn.fetchval(
            "SELECT count(*) FROM follows WHERE brand_id = $1 AND account_id = $2",
            brand_id, account_id,
        )
        return int(count)

    async def member_card(self, brand_id: str, account_id: str) -> MemberCard | None:
        """The whole card in one round trip: it is read on every shop page."""
        row = await self._conn.fetchrow(
            """
            SELECT b.brand_id, b.display_name, b.mode, b.time_zone, b.created_at,
                   m.member_id, m.account_id, m.status, m.level, m.source_channel,
                   m.member_since, m.lv0_notice_pending,
                   ARRAY(SELECT f.shop_id FROM follows f
                         WHERE f.brand_id = m.brand_id AND f.account_id = m.account_id
                         ORDER BY f.followed_at, f.shop_id) AS followed
            FROM members m JOIN brands b ON b.brand_id = m.brand_id
            WHERE m.brand_id = $1 AND m.account_id = $2 AND m.status <> 'ended'
            """,
            brand_id, account_id,
        )
        if row is None:
            return None
        return MemberCard(_brand(row), _member(row), list(row["followed"]))
