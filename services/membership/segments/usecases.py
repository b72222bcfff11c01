"""Segment use cases: preview, save, count, snapshot; and the points projection."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from brandclub.events.v1 import benefits_events_pb2, envelope_pb2
from libs.db import Connection
from libs.errors import InvalidArgument, found, require
from libs.idempotency import CommitOnce, Reply
from libs.paging import (
    decode_page_token,
    decode_time_and_id,
    keyset_page,
    page_size,
    time_and_id,
)
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
from services.membership.usecases.context import Context


async def _compile(conn: Connection, brand_id: str, rule: Rule, now: datetime, *,
                   with_profile: bool = False) -> CompiledQuery:
    """The rule as SQL for the brand, "today" being the brand's date; NotFound for a brand
    that does not exist."""
    zone = found(await SegmentRepository(conn).brand_time_zone(brand_id), f"brand {brand_id}",
                 reason="BRAND_NOT_FOUND", brand_id=brand_id)
    today = now.astimezone(ZoneInfo(zone)).date()
    return compile_segment(rule, brand_id, now, today, with_profile=with_profile)


async def preview(context: Context, brand_id: str, rule: Rule | None) -> int:
    """How many members an unsaved rule selects now."""
    brand_id = require(brand_id, "brand_id")
    checked = validate(rule)
    async with context.db.connection() as conn:
        query = await _compile(conn, brand_id, checked, context.clock())
        return await SegmentRepository(conn).count(query)


async def create_segment(context: Context, brand_id: str, name: str, rule: Rule | None,
                         commit_once: CommitOnce[Segment, Reply]) -> Reply:
    """CreateSegment: the named rule saved once per request id."""
    async def save(conn: Connection) -> Segment:
        brand, label = require(brand_id, "brand_id"), require(name, "name")
        if len(label) > MAX_NAME_LENGTH:
            raise InvalidArgument(f"name must be at most {MAX_NAME_LENGTH} characters",
                                  field="name", reason="NAME_TOO_LONG")
        checked = validate(rule)
        now = context.clock()
        await _compile(conn, brand, checked, now)  # refuses an unknown brand
        segment = Segment(new_id("seg"), brand, label, checked, now)
        await SegmentRepository(conn).add_segment(segment)
        return segment

    return await commit_once(save)


async def get_segment(context: Context, brand_id: str, segment_id: str) -> Segment:
    async with context.db.connection() as conn:
        return await existing_segment(conn, brand_id, segment_id)


async def existing_segment(conn: Connection, brand_id: str, segment_id: str) -> Segment:
    """The brand's segment, or NotFound SEGMENT_NOT_FOUND (another brand's is not found)."""
    segment = await SegmentRepository(conn).segment(require(brand_id, "brand_id"),
                                                    require(segment_id, "segment_id"))
    return found(segment, f"segment {segment_id}", reason="SEGMENT_NOT_FOUND",
                 segment_id=segment_id)


async def list_segments(context: Context, brand_id: str, requested_size: int,
                        token: str) -> tuple[list[Segment], str]:
    """A page of the brand's segments in creation order, and the next page's token."""
    brand_id = require(brand_id, "brand_id")
    size = page_size(requested_size)
    filters = {"brand_id": brand_id}
    after = decode_time_and_id(token, filters=filters)
    async with context.db.connection() as conn:
        rows = await SegmentRepository(conn).segments_page(brand_id, after, size + 1)
    return keyset_page(rows, size, lambda s: time_and_id(s.created_at, s.segment_id),
                       filters=filters)


async def count_segment(context: Context, brand_id: str, segment_id: str) -> int:
    """How many members the saved segment selects now."""
    async with context.db.connection() as conn:
        segment = await existing_segment(conn, brand_id, segment_id)
        query = await _compile(conn, brand_id, segment.rule, context.clock())
        return await SegmentRepository(conn).count(query)


async def evaluate_segment_for_member(context: Context, brand_id: str, segment_id: str,
                                      account_id: str) -> bool:
    """Whether the account's membership matches the saved segment now."""
    async with context.db.connection() as conn:
        segment = await existing_segment(conn, brand_id, segment_id)
        query = await _compile(conn, brand_id, segment.rule, context.clock())
        account_id = require(account_id, "account_id")
        return await SegmentRepository(conn).count(query.for_account(account_id)) > 0


async def create_snapshot(context: Context, brand_id: str, segment_id: str,
                          commit_once: CommitOnce[Snapshot, Reply]) -> Reply:
    """CreateSegmentSnapshot: the segment's members materialised now, once per request id."""
    async def materialise(conn: Connection) -> Snapshot:
        now = context.clock()
        segment = await existing_segment(conn, brand_id, segment_id)
        repo = SegmentRepository(conn)
        query = await _compile(conn, brand_id, segment.rule, now, with_profile=True)
        snapshot = Snapshot(new_id("snp"), brand_id, segment_id, 0, now)
        await repo.add_snapshot(snapshot)
        count = await repo.materialise(snapshot, query)
        await repo.set_snapshot_count(snapshot.snapshot_id, count)
        return Snapshot(snapshot.snapshot_id, brand_id, segment_id, count, now)

    return await commit_once(materialise)


async def get_snapshot(context: Context, brand_id: str, snapshot_id: str) -> Snapshot:
    async with context.db.connection() as conn:
        return await _existing_snapshot(conn, brand_id, snapshot_id)


async def _existing_snapshot(conn: Connection, brand_id: str, snapshot_id: str) -> Snapshot:
    snapshot = await SegmentRepository(conn).snapshot(require(brand_id, "brand_id"),
                                                      require(snapshot_id, "snapshot_id"))
    return found(snapshot, f"snapshot {snapshot_id}", reason="SNAPSHOT_NOT_FOUND",
                 snapshot_id=snapshot_id)


async def list_snapshot_members(context: Context, brand_id: str, snapshot_id: str,
                                requested_size: int,
                                token: str) -> tuple[list[SnapshotMember], str]:
    """A page of the snapshot's members in account order, and the next page's token."""
    async with context.db.connection() as conn:
        await _existing_snapshot(conn, brand_id, snapshot_id)
        size = page_size(requested_size)
        filters = {"brand_id": brand_id, "snapshot_id": snapshot_id}
        position = decode_page_token(token, ("a",), filters=filters)
        rows = await SegmentRepository(conn).snapshot_members(
            snapshot_id, position["a"] if position else "", size + 1)
    return keyset_page(rows, size, lambda m: {"a": m.account_id}, filters=filters)


async def on_benefits_event(conn: Connection, envelope: envelope_pb2.EventEnvelope) -> None:
    """Keep member_points current from PointsBalanceChanged (for points conditions)."""
    if not envelope.payload.Is(benefits_events_pb2.PointsBalanceChanged.DESCRIPTOR):
        return
    changed = benefits_events_pb2.PointsBalanceChanged()
    envelope.payload.Unpack(changed)
    await SegmentRepository(conn).set_points(changed.brand_id, changed.account_id,
                                             changed.available_points, changed.balance_version)
