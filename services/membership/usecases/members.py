"""Brand-facing reads of members: one member, the list, the counts."""

from __future__ import annotations

from collections.abc import Sequence

from libs.errors import InvalidArgument, found, require
from libs.paging import decode_page_token, keyset_page, page_size
from services.membership.adapters.members_repository import MemberRepository
from services.membership.domain.model import (
    MemberCounts,
    MemberRecord,
    MemberStatus,
    tally,
)
from services.membership.usecases.brands import existing_brand
from services.membership.usecases.context import Context


async def get_member(context: Context, brand_id: str, member_id: str,
                     account_id: str) -> MemberRecord:
    """One member of the brand, by exactly one of member id and account id."""
    brand_id = require(brand_id, "brand_id")
    if bool(member_id.strip()) == bool(account_id.strip()):
        raise InvalidArgument("give exactly one of member_id and account_id",
                              field="member_id", reason="ONE_OF_REQUIRED")
    async with context.db.connection() as conn:
        record = await MemberRepository(conn).member_record(
            brand_id, member_id=member_id.strip(), account_id=account_id.strip(),
            now=context.clock())
    return found(record, f"member {member_id.strip() or account_id.strip()} of brand {brand_id}",
                 reason="MEMBER_NOT_FOUND", brand_id=brand_id)


async def list_members(context: Context, brand_id: str, status: MemberStatus | None,
                       levels: Sequence[int], dormant: bool | None, requested_size: int,
                       token: str) -> tuple[list[MemberRecord], str]:
    """A page of the brand's live members matching the filters, in member id order."""
    async with context.db.connection() as conn:
        brand = await existing_brand(conn, brand_id)
        size = page_size(requested_size)
        for index, level in enumerate(levels):
            if not 0 <= level <= 100:
                raise InvalidArgument("levels must be between 0 and 100",
                                      field=f"levels[{index}]")
        statuses = ([status.value] if status is not None
                    else [MemberStatus.LV0.value, MemberStatus.CARD_MEMBER.value])
        filters = {"brand_id": brand.brand_id, "statuses": statuses, "levels": list(levels),
                   "dormant": dormant}
        position = decode_page_token(token, ("after",), filters=filters)
        records = await MemberRepository(conn).list_members(
            brand.brand_id, statuses, list(levels), dormant,
            str(position["after"]) if position else "", size + 1, context.clock())
    return keyset_page(records, size, lambda record: {"after": record.member.member_id},
                       filters=filters)


async def count_members(context: Context, brand_id: str) -> MemberCounts:
    """How many live members the brand has (see `domain.model.tally`)."""
    async with context.db.connection() as conn:
        brand = await existing_brand(conn, brand_id)
        return tally(await MemberRepository(conn).count_members(brand.brand_id))
