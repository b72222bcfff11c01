"""Brands and their shops."""

from __future__ import annotations

from libs.db import Connection
from services.membership.adapters.rows import (
    brand_from_row,
)
from services.membership.domain.model import (
    Brand,
    ProgramMode,
    Shop,
)


class BrandRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add_brand(self, brand: Brand) -> None:
        await self._conn.execute(
            "INSERT INTO brands (brand_id, display_name, mode, time_zone, created_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            brand.brand_id, brand.display_name, brand.mode.value, brand.time_zone,
            brand.created_at,
        )

    async def get_brand(self, brand_id: str, *, for_update: bool = False) -> Brand | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM brands WHERE brand_id = $1" + (" FOR UPDATE" if for_update else ""),
            brand_id)
        return brand_from_row(row) if row else None

    async def set_brand_mode(self, brand_id: str, mode: ProgramMode) -> None:
        await self._conn.execute("UPDATE brands SET mode = $2 WHERE brand_id = $1",
                                 brand_id, mode.value)

    async def set_gift_pack(self, brand_id: str, gift_pack_id: str) -> None:
        await self._conn.execute("UPDATE brands SET lv0_gift_pack_id = $2 WHERE brand_id = $1",
                                 brand_id, gift_pack_id)

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

    async def list_shops(self, brand_id: str, after: str, limit: int) -> list[Shop]:
        rows = await self._conn.fetch(
            "SELECT * FROM shops WHERE brand_id = $1 AND shop_id > $2 ORDER BY shop_id LIMIT $3",
            brand_id, after, limit)
        return [Shop(r["shop_id"], r["brand_id"], r["display_name"], r["created_at"])
                for r in rows]

    async def brand_ids(self) -> list[str]:
        rows = await self._conn.fetch("SELECT brand_id FROM brands ORDER BY brand_id")
        return [row["brand_id"] for row in rows]
