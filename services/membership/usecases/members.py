"""Brand-facing reads of members: one member, the list, the counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from libs.db import Connection
from libs.errors import InvalidArgument, NotFound, require
from libs.paging import decode_page_token, encode_page_token, page_size
from services.membership.adapters.postgres import MembershipRepository
from services.membership.domain.model import (
    MemberRecord,
    MemberStatus,
)
from services.membership.usecases.brands import get_brand
from services.membership.usecases.common import now_utc


async def get_member(conn: Connection, brand_id: str, member_id: str,
                     account_id: str) -> MemberRecord:
    brand_id = require(brand_id, "brand_id")
    if bool(member_id.strip()) == bool(account_id.strip()):
        raise InvalidArgument("give exactly one of member_id and account_id",
                              field="member_id", reason="ONE_OF_REQUIRED")
    record = await MembershipRepository(conn).member_record(
        brand_id, member_id=member_id.strip(), account_id=account_id.strip(), now=now_utc())
    if record is None:
        raise NotFound("no such member of this brand", reason="MEMBER_NOT_FOUND",
                       metadata={"brand_id": brand_id})
    return record


async def list_members(conn: Connection, brand_id: str, status: MemberStatus | None,
                       levels: Sequence[int], dormant: bool | None, requested_size: int,
                       token: str) -> tuple[list[MemberRecord], str]:
    brand = await get_brand(conn, brand_id)
    size = page_size(requested_size)
    for index, level in enumerate(levels):
        if not 0 <= level <= 100:
            raise InvalidArgument("levels must be between 0 and 100", field=f"levels[{index}]")
    statuses = ([status.value] if status is not None
                else [MemberStatus.LV0.value, MemberStatus.CARD_MEMBER.value])
    position = decode_page_token(token, ("after",))
    records = await MembershipRepository(conn).list_members(
        brand.brand_id, statuses, list(levels), dormant,
        str(position["after"]) if position else "", size + 1, now_utc())
    next_token = (encode_page_token({"after": records[size - 1].member.member_id})
                  if len(records) > size else "")
    return records[:size], next_token


@dataclass(frozen=True)
class MemberCounts:
    lv0_valid: int
    lv0_dormant: int
    card_valid: int
    card_dormant: int
    levels: dict[int, tuple[int, int]]


async def count_members(conn: Connection, brand_id: str) -> MemberCounts:
    brand = await get_brand(conn, brand_id)
    lv0 = [0, 0]
    card = [0, 0]
    levels: dict[int, list[int]] = {}
    for row in await MembershipRepository(conn).count_members(brand.brand_id):
        slot = 1 if row["dormant"] else 0
        if row["status"] == MemberStatus.LV0.value:
            lv0[slot] += row["n"]
        else:
            card[slot] += row["n"]
            levels.setdefault(row["level"], [0, 0])[slot] += row["n"]
    return MemberCounts(lv0[0], lv0[1], card[0], card[1],
                        {level: (v[0], v[1]) for level, v in sorted(levels.items())})
