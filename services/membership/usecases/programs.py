"""A brand's program and its tiers, and the LV0 gift pack offer."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from brandclub.events.v1 import membership_events_pb2
from libs.db import Connection
from libs.errors import FailedPrecondition, InvalidArgument, found, require
from libs.idempotency import CommitOnce, Reply
from libs.outbox import add_event
from libs.protoconv import timestamp
from services.membership.adapters.brands_repository import BrandRepository
from services.membership.adapters.programs_repository import ProgramRepository
from services.membership.domain.inputs import MAX_ID_LENGTH
from services.membership.domain.model import (
    Brand,
    ProgramMode,
    new_id,
)
from services.membership.domain.program import (
    Program,
    valid_program,
)
from services.membership.usecases.brands import existing_brand
from services.membership.usecases.context import Context, MembershipContext
from services.membership.usecases.events import PRODUCER, TOPIC


async def get_program(context: Context, brand_id: str) -> tuple[Program, Brand]:
    async with context.db.connection() as conn:
        return await configured_program(conn, brand_id)


async def configured_program(conn: Connection, brand_id: str) -> tuple[Program, Brand]:
    """The brand's program, or FailedPrecondition PROGRAM_NOT_CONFIGURED."""
    brand = await existing_brand(conn, brand_id)
    program = await ProgramRepository(conn).get_program(brand.brand_id)
    if program is None:
        raise FailedPrecondition(f"brand {brand_id} has not configured its program yet",
                                 reason="PROGRAM_NOT_CONFIGURED",
                                 metadata={"brand_id": brand.brand_id})
    return program, brand


async def update_program(context: MembershipContext, brand_id: str, mode: ProgramMode | None,
                         draft: Program,
                         commit_once: CommitOnce[tuple[Program, Brand], Reply]) -> Reply:
    """UpdateProgram's flow: the change committed once, then every cached card of the brand
    dropped."""
    reply = await commit_once(lambda conn: _replace_program(conn, brand_id, mode, draft,
                                                            context.clock()))
    await context.cards.forget_brand(brand_id.strip())
    return reply


async def _replace_program(conn: Connection, brand_id: str, mode: ProgramMode | None,
                           draft: Program, now: datetime) -> tuple[Program, Brand]:
    """Replace the program's configuration (tiers included) as one change."""
    brand_repo = BrandRepository(conn)
    program_repo = ProgramRepository(conn)
    brand = found(await brand_repo.get_brand(require(brand_id, "brand_id"), for_update=True),
                  f"brand {brand_id}", reason="BRAND_NOT_FOUND", brand_id=brand_id)
    existing = await program_repo.get_program(brand.brand_id)
    program = valid_program(replace(
        draft, program_id=existing.program_id if existing else new_id("prg"),
        brand_id=brand.brand_id, updated_at=now))
    if mode is not None and mode is not brand.mode:
        await brand_repo.set_brand_mode(brand.brand_id, mode)
        brand = replace(brand, mode=mode)
    await program_repo.put_program(program)
    await add_event(conn, topic=TOPIC, brand_id=brand.brand_id, producer=PRODUCER,
                    payload=program_changed(program))
    return program, brand


def program_changed(program: Program) -> membership_events_pb2.ProgramChanged:
    """What other services apply from the program (benefits: each tier's points multiplier);
    they keep a projection of it and never a setting of their own."""
    return membership_events_pb2.ProgramChanged(
        brand_id=program.brand_id, program_id=program.program_id,
        update_time=timestamp(program.updated_at),
        tier_multipliers=[membership_events_pb2.ProgramTierMultiplier(
            level=t.level, points_multiplier_percent=t.points_multiplier_percent)
            for t in program.tiers])


async def set_gift_pack_offer(context: MembershipContext, brand_id: str, gift_pack_id: str,
                              commit_once: CommitOnce[tuple[Program, Brand], Reply]) -> Reply:
    """SetLv0GiftPackOffer's flow: the offer committed once, then every cached card of the
    brand dropped."""
    reply = await commit_once(lambda conn: _offer_gift_pack(conn, brand_id, gift_pack_id))
    await context.cards.forget_brand(brand_id.strip())
    return reply


async def _offer_gift_pack(conn: Connection, brand_id: str,
                           gift_pack_id: str) -> tuple[Program, Brand]:
    gift_pack_id = gift_pack_id.strip()
    if len(gift_pack_id) > MAX_ID_LENGTH:
        raise InvalidArgument("gift_pack_id is too long", field="gift_pack_id")
    program, brand = await configured_program(conn, brand_id)
    await BrandRepository(conn).set_gift_pack(brand.brand_id, gift_pack_id)
    return program, replace(brand, lv0_gift_pack_id=gift_pack_id)
