"""Segment use cases: preview, save, count, snapshot; and the points projection."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from brandclub.events.v1 import benefits_events_pb2, envelope_pb2
from libs.db import Connection
from libs.errors import InvalidArgument, NotFound, require
from libs.paging import decode_page_token, encode_page_token, page_size
from services.membership.domain.model import new_id
from services.membership.segments.adapters.postgres import SegmentRepository
from services.membership.segments.adapters.sql import CompiledQuery, compile_segment
from services.membership.segments.domain.model import (
    MAX_NAME_LENGTH,
    Segment,
    Snapshot,
    SnapshotMember,
)
from services.membership.segments.domain.rules import Rule, validate


async def _compile(conn: Connection, brand_id: str, rule: Rule, now: datetime, *,
                   with_profile: bool = False) -> CompiledQuery:
    zone = await SegmentRepository(conn).brand_time_zone(brand_id)
    if zone is None:
        raise NotFound(f"brand {brand_id} does not exist", reason="BRAND_NOT_FOUND",
                       metadata={"brand_id": brand_id})
    today = now.astimezone(ZoneInfo(zone)).date()
    return compile_segment(rule, brand_id, now, today, with_profile=with_profile)


async def preview(conn: Connection, brand_id: str, rule: Rule | None, now: datetime) -> int:
    brand_id = require(brand_id, "brand_id")
    query = await _compile(conn, brand_id, validate(rule), now)
    return await SegmentRepository(conn).count(query)


async def create_segment(conn: Connection, brand_id: str, name: str, rule: Rule | None,
                         now: datetime) -> Segment:
    brand_id, name = require(brand_id, "brand_id"), require(name, "name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"name must be at most {MAX_NAME_LENGTH} characters",
                              field="name", reason="NAME_TOO_LONG")
    checked = validate(rule)
    await _compile(conn, brand_id, checked, now)  # refuses an unknown brand
    segment = Segment(new_id("seg"), brand_id, name, checked, now)
    await SegmentRepository(conn).add_segment(segment)
    return segment


async def get_segment(conn: Connection, brand_id: str, segment_id: str) -> Segment:
    found = await SegmentRepository(conn).segment(require(brand_id, "brand_id"),
                                                  require(segment_id, "segment_id"))
    if found is None:
        raise NotFound(f"segment {segment_id} does not exist", reason="SEGMENT_NOT_FOUND",
                       metadata={"segment_id": segment_id})
    return found


async def list_segments(conn: Connection, brand_id: str, requested_size: int,
                        token: str) -> tuple[list[Segment], str]:
    size = page_size(requested_size)
    position = decode_page_token(token, ("t", "id"))
    after = (datetime.fromisoformat(position["t"]), position["id"]) if position else None
    rows = await SegmentRepository(conn).segments_page(require(brand_id, "brand_id"), after,
                                                       size + 1)
    page = rows[:size]
    return page, (encode_page_token({"t": page[-1].created_at.isoformat(),
                                     "id": page[-1].segment_id}) if len(rows) > size else "")


async def count_segment(conn: Connection, brand_id: str, segment_id: str,
                        now: datetime) -> int:
    segment = await get_segment(conn, brand_id, segment_id)
    return await SegmentRepository(conn).count(await _compile(conn, brand_id, segment.rule, now))


async def member_matches(conn: Connection, brand_id: str, segment_id: str, account_id: str,
                         now: datetime) -> bool:
    segment = await get_segment(conn, brand_id, segment_id)
    query = await _compile(conn, brand_id, segment.rule, now)
    account_id = require(account_id, "account_id")
    return await SegmentRepository(conn).count(query.for_account(account_id)) > 0


async def create_snapshot(conn: Connection, brand_id: str, segment_id: str,
                          now: datetime) -> Snapshot:
    """Materialise the segment's members now, in the caller's transaction."""
    segment = await get_segment(conn, brand_id, segment_id)
    repo = SegmentRepository(conn)
    query = await _compile(conn, brand_id, segment.rule, now, with_profile=True)
    snapshot = Snapshot(new_id("snp"), brand_id, segment_id, 0, now)
    await repo.add_snapshot(snapshot)
    count = await repo.materialise(snapshot, query)
    await repo.set_snapshot_count(snapshot.snapshot_id, count)
    return Snapshot(snapshot.snapshot_id, brand_id, segment_id, count, now)


async def get_snapshot(conn: Connection, brand_id: str, snapshot_id: str) -> Snapshot:
    found = await SegmentRepository(conn).snapshot(require(brand_id, "brand_id"),
                                                   require(snapshot_id, "snapshot_id"))
    if found is None:
        raise NotFound(f"snapshot {snapshot_id} does not exist", reason="SNAPSHOT_NOT_FOUND",
                       metadata={"snapshot_id": snapshot_id})
    return found


async def snapshot_members(conn: Connection, brand_id: str, snapshot_id: str,
                           requested_size: int, token: str) -> tuple[list[SnapshotMember], str]:
    await get_snapshot(conn, brand_id, snapshot_id)
    size = page_size(requested_size)
    position = decode_page_token(token, ("a",))
    rows = await SegmentRepository(conn).snapshot_members(
        snapshot_id, position["a"] if position else "", size + 1)
    page = rows[:size]
    return page, (encode_page_token({"a": page[-1].account_id}) if len(rows) > size else "")


async def on_benefits_event(conn: Connection, envelope: envelope_pb2.EventEnvelope) -> None:
    """Keep member_points current from PointsBalanceChanged (for points conditions)."""
    if not envelope.payload.Is(benefits_events_pb2.PointsBalanceChanged.DESCRIPTOR):
        return
    changed = benefits_events_pb2.PointsBalanceChanged()
    envelope.payload.Unpack(changed)
    await SegmentRepository(conn).set_points(changed.brand_id, changed.account_id,
                                             changed.available_points, changed.balance_version)
