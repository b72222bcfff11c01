"""asyncpg repository for segments and snapshots (membership schema)."""

from __future__ import annotations

import json
from datetime import datetime

from libs.db import Connection, Record
from services.membership.segments.adapters.sql import CompiledQuery
from services.membership.segments.domain.model import Segment, Snapshot, SnapshotMember
from services.membership.segments.domain.rules import from_dict, to_dict


def _segment(r: Record) -> Segment:
    return Segment(r["segment_id"], r["brand_id"], r["name"], from_dict(json.loads(r["rule"])),
                   r["created_at"])


def _snapshot(r: Record) -> Snapshot:
    return Snapshot(r["snapshot_id"], r["brand_id"], r["segment_id"], r["member_count"],
                    r["created_at"])


class SegmentRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def brand_time_zone(self, brand_id: str) -> str | None:
        zone = await self._conn.fetchval("SELECT time_zone FROM brands WHERE brand_id = $1",
                                         brand_id)
        return str(zone) if zone is not None else None

    async def count(self, query: CompiledQuery) -> int:
        return int(await self._conn.fetchval(query.count_sql(), *query.params))

    async def add_segment(self, segment: Segment) -> None:
        await self._conn.execute(
            "INSERT INTO segments (segment_id, brand_id, name, rule, created_at) "
            "VALUES ($1, $2, $3, $4, $5)", segment.segment_id, segment.brand_id, segment.name,
            json.dumps(to_dict(segment.rule)), segment.created_at)

    async def segment(self, brand_id: str, segment_id: str) -> Segment | None:
        r = await self._conn.fetchrow(
            "SELECT * FROM segments WHERE brand_id = $1 AND segment_id = $2",
            brand_id, segment_id)
        return _segment(r) if r else None

    async def segments_page(self, brand_id: str, after: tuple[datetime, str] | None,
                            limit: int) -> list[Segment]:
        rows = await self._conn.fetch(
            "SELECT * FROM segments WHERE brand_id = $1 AND ($2::timestamptz IS NULL "
            "OR (created_at, segment_id) > ($2, $3)) ORDER BY created_at, segment_id LIMIT $4",
            brand_id, after[0] if after else None, after[1] if after else "", limit)
        return [_segment(r) for r in rows]

    async def materialise(self, snapshot: Snapshot, query: CompiledQuery) -> int:
        """Copy the matching members into the snapshot in one statement; returns the count."""
        n = len(query.params) + 1
        status = await self._conn.execute(
            "INSERT INTO segment_snapshot_members (snapshot_id, account_id, level, "
            "points_balance, order_count) "
            f"SELECT ${n}, m.account_id, m.level, coalesce(p.available, 0), "
            f"coalesce(s.order_count, 0) {query.from_where}",
            *query.params, snapshot.snapshot_id)
        return int(status.split()[-1])

    async def add_snapshot(self, snapshot: Snapshot) -> None:
        await self._conn.execute(
            "INSERT INTO segment_snapshots (snapshot_id, brand_id, segment_id, member_count, "
            "created_at) VALUES ($1, $2, $3, $4, $5)", snapshot.snapshot_id, snapshot.brand_id,
            snapshot.segment_id, snapshot.member_count, snapshot.created_at)

    async def set_snapshot_count(self, snapshot_id: str, count: int) -> None:
        await self._conn.execute(
            "UPDATE segment_snapshots SET member_count = $2 WHERE snapshot_id = $1",
            snapshot_id, count)

    async def snapshot(self, brand_id: str, snapshot_id: str) -> Snapshot | None:
        r = await self._conn.fetchrow(
            "SELECT * FROM segment_snapshots WHERE brand_id = $1 AND snapshot_id = $2",
            brand_id, snapshot_id)
        return _snapshot(r) if r else None

    async def snapshot_members(self, snapshot_id: str, after: str,
                               limit: int) -> list[SnapshotMember]:
        rows = await self._conn.fetch(
            "SELECT account_id, level, points_balance, order_count "
            "FROM segment_snapshot_members WHERE snapshot_id = $1 AND account_id > $2 "
            "ORDER BY account_id LIMIT $3", snapshot_id, after, limit)
        return [SnapshotMember(r["account_id"], r["level"], r["points_balance"],
                               r["order_count"]) for r in rows]

    async def set_points(self, brand_id: str, account_id: str, available: int,
                         version: int) -> None:
        """Keep the balance of the newest version seen; an older event arriving late (or a
        redelivered one) changes nothing."""
        await self._conn.execute(
            "INSERT INTO member_points (brand_id, account_id, available, balance_version) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (brand_id, account_id) DO UPDATE "
            "SET available = EXCLUDED.available, balance_version = EXCLUDED.balance_version "
            "WHERE member_points.balance_version < EXCLUDED.balance_version "
            "OR EXCLUDED.balance_version = 0",
            brand_id, account_id, available, version)
