"""Benefits use cases."""

from __future__ import annotations

from libs.db import Connection
from libs.errors import require
from services.benefits.adapters.postgres import PointsRepository
from services.benefits.domain.points import PointsBalance


async def get_points_balance(conn: Connection, brand_id: str, account_id: str) -> PointsBalance:
    return await PointsRepository(conn).balance(require(brand_id, "brand_id"),
                                                require(account_id, "account_id"))
