"""Issuing and claiming coupons, and the card-opening gift pack."""

from __future__ import annotations

from datetime import datetime

from brandclub.events.v1 import benefits_events_pb2
from libs.clock import system_clock
from libs.db import Connection
from libs.errors import Code, DomainError, FailedPrecondition, InvalidArgument, require
from libs.idempotency import CommitOnce, Reply
from libs.outbox import add_event
from libs.paging import decode_page_token, decode_time_and_id, keyset_page, page_size, time_and_id
from libs.protoconv import timestamp
from libs.sagas import is_transient
from services.benefits.adapters.coupons_repository import CouponRepository
from services.benefits.domain.benefits import (
    CouponTemplate,
    IssuedCoupon,
    Placement,
    level_eligible,
)
from services.benefits.domain.eligibility import Action
from services.benefits.domain.points import Source, new_id, valid_reason
from services.benefits.usecases.config import get_template
from services.benefits.usecases.context import BenefitsContext
from services.benefits.usecases.eligibility import require_member
from services.benefits.usecases.ledger import PRODUCER, TOPIC, Ledger


async def issue_coupon(conn: Connection, brand_id: str, account_id: str, template_id: str, *,
                       source: str, reason_code: str, request_id: str,
                       level: int | None, now: datetime | None = None) -> IssuedCoupon:
    """One coupon of a template to a member: never past the stock, never past the member's
    limit (both are conditional updates under row locks, so concurrent calls queue). `level`
    is the member's level when the template's level gate applies (a claim), None when not."""
    brand_id = require(brand_id, "brand_id")
    account_id = require(account_id, "account_id")
    template_id = require(template_id, "coupon_template_id")
    reason = valid_reason(reason_code, source.upper())
    now = now or system_clock()
    template = await get_template(conn, brand_id, template_id)
    if not template.claimable_at(now):
        raise FailedPrecondition(f"coupon template {template_id} cannot be issued now",
                                 reason="COUPON_NOT_AVAILABLE",
                                 metadata={"template_id": template_id})
    if level is not None and not level_eligible(template.eligible_levels, level):
        raise FailedPrecondition(f"level {level} may not claim this coupon",
                                 reason="LEVEL_NOT_ELIGIBLE",
                                 metadata={"template_id": template_id, "level": str(level)})
    repo = CouponRepository(conn)
    valid_start, valid_end = template.validity(now)
    coupon = IssuedCoupon(new_id("cpn"), template, account_id, valid_start, valid_end, source,
                          reason, now)
    # A savepoint: a refused coupon leaves nothing behind. The template's stock row is every
    # claimer's hot spot, so it is updated last and its lock held as briefly as possible.
    async with conn.transaction():
        if not await repo.take_holding(brand_id, template_id, account_id,
                                       template.per_member_limit):
            raise FailedPrecondition(
                f"the limit of {template.per_member_limit} per member is reached",
                reason="COUPON_LIMIT_REACHED", metadata={"template_id": template_id})
        await repo.add_coupon(coupon, request_id)
        await add_event(conn, topic=TOPIC, brand_id=brand_id, producer=PRODUCER,
                        payload=benefits_events_pb2.CouponIssued(
                            brand_id=brand_id, account_id=account_id,
                            coupon_id=coupon.coupon_id, coupon_template_id=template_id,
                            source=source.upper(), expire_time=timestamp(valid_end)))
        if not await repo.take_stock(brand_id, template_id):
            raise FailedPrecondition(f"coupon template {template_id} is out of stock",
                                     reason="COUPON_OUT_OF_STOCK",
                                     metadata={"template_id": template_id})
    return coupon


MAX_CHECKED_TEMPLATES = 50


async def coupon_refusals(conn: Connection, brand_id: str, account_id: str,
                          template_ids: list[str], now: datetime,
                          quantity: int = 1) -> dict[str, str]:
    """Why `quantity` coupons of each template could not be issued to the member now ("" when
    they could): the checks issue_coupon makes (a template of this brand, open, in stock,
    under the member's limit), taking nothing. Sagas ask before they spend points on one."""
    brand_id = require(brand_id, "brand_id")
    account_id = require(account_id, "account_id")
    if len(template_ids) > MAX_CHECKED_TEMPLATES:
        raise InvalidArgument(f"at most {MAX_CHECKED_TEMPLATES} templates per check",
                              field="coupon_template_ids", reason="TOO_MANY_TEMPLATES")
    repo = CouponRepository(conn)
    held = await repo.holdings(brand_id, account_id)
    refusals: dict[str, str] = {}
    for template_id in template_ids:
        template = await repo.template(brand_id, template_id) if template_id.strip() else None
        if template is None:
            refusals[template_id] = "COUPON_TEMPLATE_NOT_FOUND"
        elif not template.claimable_at(now):
            refusals[template_id] = "COUPON_NOT_AVAILABLE"
        elif template.issued_count + quantity > template.total_stock:
            refusals[template_id] = "COUPON_OUT_OF_STOCK"
        elif held.get(template_id, 0) + quantity > template.per_member_limit:
            refusals[template_id] = "COUPON_LIMIT_REACHED"
        else:
            refusals[template_id] = ""
    return refusals


async def issue(app: BenefitsContext, commit_once: CommitOnce[IssuedCoupon, Reply], *,
                brand_id: str, account_id: str, template_id: str, reason_code: str,
                request_id: str) -> Reply:
    """The brand (a prize, a campaign, an ISV) gives a member a coupon: no level gate."""
    await require_member(app.membership, Action.ISSUE_COUPON, brand_id, account_id)
    return await commit_once(lambda conn: issue_coupon(
        conn, brand_id, account_id, template_id, source="issue", reason_code=reason_code,
        request_id=request_id, level=None, now=app.clock()))


async def claim(app: BenefitsContext, commit_once: CommitOnce[IssuedCoupon, Reply], *,
                brand_id: str, account_id: str, template_id: str, request_id: str) -> Reply:
    """The member claims a coupon: the template's level gate applies to the level now."""
    member = await require_member(app.membership, Action.CLAIM_COUPON, brand_id, account_id)
    return await commit_once(lambda conn: issue_coupon(
        conn, brand_id, account_id, template_id, source="claim", reason_code="CLAIMED",
        request_id=request_id, level=member.level, now=app.clock()))


async def check_issuable(app: BenefitsContext, brand_id: str, account_id: str,
                         template_ids: list[str]) -> dict[str, str]:
    """Why each template could not be issued to the member now ("" when it could). A member
    IssueCoupon would refuse is answered not issuable for every template, with the refusal's
    reason; a bad argument or an outage is raised as it is."""
    try:
        await require_member(app.membership, Action.ISSUE_COUPON, brand_id, account_id)
    except DomainError as refused:
        if refused.code is Code.INVALID_ARGUMENT or is_transient(refused):
            raise
        return dict.fromkeys(template_ids, refused.reason)
    async with app.db.connection() as conn:
        return await coupon_refusals(conn, brand_id, account_id, template_ids, app.clock())


async def list_member_coupons(app: BenefitsContext, brand_id: str, account_id: str,
                              only_valid: bool, requested_size: int, token: str
                              ) -> tuple[list[IssuedCoupon], str]:
    """One page of the member's coupons (only those valid now, if asked), newest first."""
    size = page_size(requested_size)
    await require_member(app.membership, Action.READ_HOLDINGS, brand_id, account_id)
    filters = {"brand_id": brand_id, "account_id": account_id, "only_valid": only_valid}
    position = decode_page_token(token, ("seq",), filters=filters)
    async with app.db.connection() as conn:
        rows = await CouponRepository(conn).member_coupons(
            brand_id, account_id, app.clock() if only_valid else None,
            int(position["seq"]) if position else None, size + 1)
    page, next_token = keyset_page(rows, size, lambda row: {"seq": row[0]}, filters=filters)
    return [coupon for _, coupon in page], next_token


# Templates read per query while looking for a page of those the member may claim.
CLAIMABLE_BATCH = 200


async def list_claimable(app: BenefitsContext, brand_id: str, account_id: str,
                         placement: Placement | None, requested_size: int, token: str
                         ) -> tuple[list[CouponTemplate], str]:
    """One page of the templates the member may claim now (open, in stock, the member's
    level, under the member's limit), oldest first."""
    size = page_size(requested_size)
    member = await require_member(app.membership, Action.READ_OFFERS, brand_id, account_id)
    filters = {"brand_id": brand_id, "account_id": account_id,
               "placement": placement.value if placement else ""}
    after = decode_time_and_id(token, filters=filters)
    now = app.clock()
    found: list[CouponTemplate] = []
    async with app.db.connection() as conn:
        repo = CouponRepository(conn)
        held = await repo.holdings(brand_id, account_id)
        while len(found) <= size:
            batch = await repo.claimable(brand_id, now, placement.value if placement else None,
                                         after, CLAIMABLE_BATCH)
            found += [t for t in batch
                      if t.claimable_at(now) and level_eligible(t.eligible_levels, member.level)
                      and held.get(t.template_id, 0) < t.per_member_limit]
            if len(batch) < CLAIMABLE_BATCH:
                break
            last = batch[-1]
            assert last.created_at is not None
            after = (last.created_at, last.template_id)
    return keyset_page(found, size, lambda t: time_and_id(_created(t), t.template_id),
                       filters=filters)


def _created(template: CouponTemplate) -> datetime:
    assert template.created_at is not None  # a saved template has its creation time
    return template.created_at


async def grant_card_opening_gift_pack(conn: Connection, brand_id: str, program_id: str,
                                       account_id: str, joined_at: datetime) -> bool:
    """Grant the brand's card-opening gift pack once per member and program; coupons that are
    out of stock or closed are skipped (and recorded) rather than failing the whole pack."""
    repo = CouponRepository(conn)
    pack = await repo.active_gift_pack(brand_id, joined_at)
    program = program_id or brand_id
    if pack is None or not await repo.claim_gift_pack_slot(brand_id, program, account_id,
                                                           pack.gift_pack_id, joined_at):
        return False
    key = f"giftpack:{brand_id}:{program}:{account_id}"
    entry_id = None
    if pack.points > 0:
        change = await Ledger(conn).grant(brand_id, account_id, pack.points,
                                          reason_code="CARD_OPENING_GIFT_PACK",
                                          source=Source.GIFT_PACK, request_id=key)
        entry_id = change.entry.entry_id
    coupon_ids: list[str] = []
    skipped: list[str] = []
    for template_id, quantity in pack.coupons:
        for index in range(quantity):
            try:
                coupon = await issue_coupon(conn, brand_id, account_id, template_id,
                                            source="gift_pack",
                                            reason_code="CARD_OPENING_GIFT_PACK",
                                            request_id=f"{key}:{template_id}:{index}",
                                            level=None)
            except DomainError:
                skipped.append(template_id)
                break
            coupon_ids.append(coupon.coupon_id)
    await repo.finish_gift_pack_grant(brand_id, program, account_id, entry_id, coupon_ids,
                                      skipped)
    await add_event(conn, topic=TOPIC, brand_id=brand_id, producer=PRODUCER,
                    payload=benefits_events_pb2.GiftPackGranted(
                        brand_id=brand_id, account_id=account_id, program_id=program,
                        gift_pack_id=pack.gift_pack_id, points=pack.points,
                        coupon_ids=coupon_ids))
    return True
