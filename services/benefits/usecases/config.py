"""The brand's configuration: points policy, earning rules, tier multipliers, coupon
templates, gift packs and mall items."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from libs.db import Connection
from libs.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    found,
    require,
)
from libs.idempotency import CommitOnce, Reply
from libs.paging import PAGE_TOKEN_INVALID, decode_page_token, keyset_page, page_size
from services.benefits.adapters.config_repository import ConfigRepository
from services.benefits.adapters.coupons_repository import CouponRepository
from services.benefits.adapters.mall_repository import MallRepository
from services.benefits.domain.benefits import (
    CouponTemplate,
    EarningRule,
    GiftPack,
    MallItem,
    MallItemKind,
    Trigger,
    started,
    valid_gift_pack,
    valid_item,
    valid_multipliers,
    valid_rule,
    valid_template,
)
from services.benefits.domain.eligibility import Action
from services.benefits.domain.points import PointsPolicy, new_id, valid_policy
from services.benefits.usecases.context import BenefitsContext
from services.benefits.usecases.eligibility import require_member
from services.benefits.usecases.ledger import policy_of
from services.benefits.usecases.references import check_rule_references


async def get_policy(app: BenefitsContext, brand_id: str) -> PointsPolicy:
    async with app.db.connection() as conn:
        return await policy_of(conn, require(brand_id, "brand_id"))


async def update_policy(app: BenefitsContext, commit_once: CommitOnce[PointsPolicy, Reply],
                        policy: PointsPolicy) -> Reply:
    return await commit_once(lambda conn: save_policy(conn, policy, app.clock()))


async def save_policy(conn: Connection, policy: PointsPolicy, now: datetime) -> PointsPolicy:
    """Replace the policy; its time zone is the brand's (membership's), never set here: an
    empty one keeps it, another one is refused."""
    repo = ConfigRepository(conn)
    given = policy.time_zone.strip()
    brand_zone = await repo.brand_time_zone(require(policy.brand_id, "policy.brand_id"))
    if brand_zone is not None:
        if given and given != brand_zone:
            raise InvalidArgument(
                f"policy.time_zone is the brand's own ({brand_zone}), set when the brand was "
                "created; leave it empty", field="policy.time_zone",
                reason="TIME_ZONE_IS_THE_BRANDS", metadata={"brand_time_zone": brand_zone})
        policy = replace(policy, time_zone=brand_zone)
    return await repo.save_policy(valid_policy(policy), now)


async def apply_brand_time_zone(conn: Connection, brand_id: str, time_zone: str,
                                now: datetime) -> None:
    """Project the brand's time zone (membership's BrandCreated) onto its points policy."""
    await ConfigRepository(conn).set_brand_time_zone(require(brand_id, "brand_id"),
                                                     require(time_zone, "time_zone"), now)


async def _one_order_rule(repo: ConfigRepository, rule: EarningRule) -> None:
    if rule.trigger is Trigger.ORDER_PAID and rule.enabled:
        others = [r for r in await repo.enabled_rules(rule.brand_id, Trigger.ORDER_PAID)
                  if r.rule_id != rule.rule_id]
        if others:
            raise AlreadyExists("the brand already has an enabled order rule; disable it first",
                                reason="ORDER_RULE_EXISTS",
                                metadata={"rule_id": others[0].rule_id})


async def create_rule(app: BenefitsContext, commit_once: CommitOnce[EarningRule, Reply],
                      draft: EarningRule) -> Reply:
    """Save a new earning rule; an activity it names is checked in engagement first."""
    await check_rule_references(app.activities, draft)

    async def save(conn: Connection) -> EarningRule:
        require(draft.brand_id, "rule.brand_id")
        now = app.clock()
        rule = valid_rule(replace(draft, rule_id=new_id("rul"), created_at=now,
                                  updated_at=now))
        repo = ConfigRepository(conn)
        await _one_order_rule(repo, rule)
        return await repo.add_rule(rule)

    return await commit_once(save)


async def _get_rule(conn: Connection, brand_id: str, rule_id: str) -> EarningRule:
    rule = await ConfigRepository(conn).rule(require(brand_id, "brand_id"),
                                             require(rule_id, "rule_id"))
    return found(rule, f"earning rule {rule_id}", reason="RULE_NOT_FOUND", rule_id=rule_id)


async def get_rule(app: BenefitsContext, brand_id: str, rule_id: str) -> EarningRule:
    async with app.db.connection() as conn:
        return await _get_rule(conn, brand_id, rule_id)


async def update_rule(app: BenefitsContext, commit_once: CommitOnce[EarningRule, Reply],
                      changed: EarningRule) -> Reply:
    """Replace an earning rule (its trigger stays); an activity it names is checked first."""
    await check_rule_references(app.activities, changed)

    async def save(conn: Connection) -> EarningRule:
        current = await _get_rule(conn, changed.brand_id, changed.rule_id)
        if changed.trigger is not current.trigger:
            raise FailedPrecondition("an earning rule's trigger cannot change",
                                     reason="TRIGGER_IMMUTABLE",
                                     metadata={"field": "rule.trigger"})
        repo = ConfigRepository(conn)
        await repo.rule(changed.brand_id, changed.rule_id, lock=True)
        rule = valid_rule(changed)
        await _one_order_rule(repo, rule)
        return await repo.update_rule(rule, app.clock())

    return await commit_once(save)


async def list_rules(app: BenefitsContext, brand_id: str, requested_size: int,
                     token: str) -> tuple[list[EarningRule], str]:
    size, filters, after = _after_page(brand_id, requested_size, token)
    async with app.db.connection() as conn:
        rules = await ConfigRepository(conn).rules(brand_id, after, size + 1)
    return keyset_page(rules, size, lambda r: {"after": r.rule_id}, filters=filters)


def _after_page(brand_id: str, requested_size: int, token: str
                ) -> tuple[int, dict[str, str], str | None]:
    """(page size, filters, id after which the page starts) of a brand's list by id."""
    size = page_size(requested_size)
    filters = {"brand_id": require(brand_id, "brand_id")}
    position = decode_page_token(token, ("after",), filters=filters)
    return size, filters, str(position["after"]) if position else None


async def apply_program_multipliers(conn: Connection, brand_id: str, program_id: str,
                                    updated_at: datetime,
                                    given: list[tuple[int, int]]) -> bool:
    """Project the program's tier multipliers (membership's ProgramChanged): the program is
    their one source, so earning applies exactly what the merchant saved on it. A change older
    than the one already applied is ignored. Returns whether it was applied."""
    brand_id = require(brand_id, "brand_id")
    multipliers = valid_multipliers(given)
    repo = ConfigRepository(conn)
    if not await repo.claim_program_version(brand_id, program_id, updated_at):
        return False
    await repo.replace_multipliers(brand_id, multipliers)
    return True


async def list_multipliers(app: BenefitsContext, brand_id: str, requested_size: int,
                           token: str) -> tuple[list[tuple[int, int]], str]:
    """One page of the brand's tier multipliers (level, percent), lowest level first."""
    size = page_size(requested_size)
    filters = {"brand_id": require(brand_id, "brand_id")}
    position = decode_page_token(token, ("level",), filters=filters)
    if position is not None and not isinstance(position["level"], int):
        raise InvalidArgument("page_token names no valid position", field="page_token",
                              reason=PAGE_TOKEN_INVALID)
    async with app.db.connection() as conn:
        saved = await ConfigRepository(conn).multipliers(
            brand_id, after_level=position["level"] if position else -1, limit=size + 1)
    return keyset_page(list(saved.items()), size, lambda m: {"level": m[0]}, filters=filters)


async def create_template(app: BenefitsContext, commit_once: CommitOnce[CouponTemplate, Reply],
                          draft: CouponTemplate) -> Reply:
    async def save(conn: Connection) -> CouponTemplate:
        require(draft.brand_id, "template.brand_id")
        now = app.clock()
        template = valid_template(replace(draft, template_id=new_id("cpt"), closed=False,
                                          issued_count=0,
                                          claim_start=started(draft.claim_start, now)))
        return await CouponRepository(conn).save_template(template, now, create=True)

    return await commit_once(save)


async def get_template(conn: Connection, brand_id: str, template_id: str, *,
                       lock: bool = False) -> CouponTemplate:
    template = await CouponRepository(conn).template(
        require(brand_id, "brand_id"), require(template_id, "template_id"), lock=lock)
    return found(template, f"coupon template {template_id}",
                 reason="COUPON_TEMPLATE_NOT_FOUND", template_id=template_id)


async def read_template(app: BenefitsContext, brand_id: str, template_id: str
                        ) -> CouponTemplate:
    async with app.db.connection() as conn:
        return await get_template(conn, brand_id, template_id)


async def update_template(app: BenefitsContext, commit_once: CommitOnce[CouponTemplate, Reply],
                          changed: CouponTemplate) -> Reply:
    async def save(conn: Connection) -> CouponTemplate:
        current = await get_template(conn, changed.brand_id, changed.template_id, lock=True)
        if current.closed:
            raise FailedPrecondition("a closed coupon template cannot change",
                                     reason="COUPON_TEMPLATE_CLOSED",
                                     metadata={"template_id": changed.template_id})
        now = app.clock()
        template = valid_template(replace(changed, closed=False,
                                          issued_count=current.issued_count,
                                          claim_start=started(changed.claim_start, now)))
        return await CouponRepository(conn).save_template(template, now, create=False)

    return await commit_once(save)


async def close_template(app: BenefitsContext, commit_once: CommitOnce[CouponTemplate, Reply],
                         brand_id: str, template_id: str) -> Reply:
    async def close(conn: Connection) -> CouponTemplate:
        current = await get_template(conn, brand_id, template_id, lock=True)
        return await CouponRepository(conn).save_template(replace(current, closed=True),
                                                          app.clock(), create=False)

    return await commit_once(close)


async def list_templates(app: BenefitsContext, brand_id: str, requested_size: int,
                         token: str) -> tuple[list[CouponTemplate], str]:
    size, filters, after = _after_page(brand_id, requested_size, token)
    async with app.db.connection() as conn:
        templates = await CouponRepository(conn).templates(brand_id, after, size + 1)
    return keyset_page(templates, size, lambda t: {"after": t.template_id}, filters=filters)


async def _templates_exist(conn: Connection, brand_id: str, ids: list[str],
                           field_prefix: str) -> None:
    repo = CouponRepository(conn)
    for index, template_id in enumerate(ids):
        if await repo.template(brand_id, template_id) is None:
            raise NotFound(f"coupon template {template_id} does not exist",
                           reason="COUPON_TEMPLATE_NOT_FOUND",
                           metadata={"template_id": template_id,
                                     "field": field_prefix.format(index=index)})


async def create_gift_pack(app: BenefitsContext, commit_once: CommitOnce[GiftPack, Reply],
                           draft: GiftPack) -> Reply:
    async def save(conn: Connection) -> GiftPack:
        brand_id = require(draft.brand_id, "gift_pack.brand_id")
        now = app.clock()
        pack = valid_gift_pack(replace(draft, gift_pack_id=new_id("gfp"),
                                       start_time=started(draft.start_time, now)))
        await _templates_exist(conn, brand_id, [c[0] for c in pack.coupons],
                               "gift_pack.coupons[{index}].coupon_template_id")
        return await CouponRepository(conn).save_gift_pack(pack, now, create=True)

    return await commit_once(save)


async def update_gift_pack(app: BenefitsContext, commit_once: CommitOnce[GiftPack, Reply],
                           changed: GiftPack) -> Reply:
    async def save(conn: Connection) -> GiftPack:
        repo = CouponRepository(conn)
        found(await repo.gift_pack(require(changed.brand_id, "gift_pack.brand_id"),
                                   require(changed.gift_pack_id, "gift_pack.gift_pack_id")),
              f"gift pack {changed.gift_pack_id}", reason="GIFT_PACK_NOT_FOUND",
              gift_pack_id=changed.gift_pack_id)
        now = app.clock()
        pack = valid_gift_pack(replace(changed, start_time=started(changed.start_time, now)))
        await _templates_exist(conn, pack.brand_id, [c[0] for c in pack.coupons],
                               "gift_pack.coupons[{index}].coupon_template_id")
        return await repo.save_gift_pack(pack, now, create=False)

    return await commit_once(save)


async def list_gift_packs(app: BenefitsContext, brand_id: str, requested_size: int,
                          token: str) -> tuple[list[GiftPack], str]:
    size, filters, after = _after_page(brand_id, requested_size, token)
    async with app.db.connection() as conn:
        packs = await CouponRepository(conn).gift_packs(brand_id, after, size + 1)
    return keyset_page(packs, size, lambda p: {"after": p.gift_pack_id}, filters=filters)


async def card_opening_gift_pack(app: BenefitsContext, brand_id: str, account_id: str
                                 ) -> tuple[GiftPack | None, bool]:
    """The gift pack a card opened now would get and, when a member is named (and allowed to
    read offers), whether that member already got one."""
    if account_id:
        await require_member(app.membership, Action.READ_OFFERS, brand_id, account_id)
    async with app.db.connection() as conn:
        repo = CouponRepository(conn)
        pack = await repo.active_gift_pack(require(brand_id, "brand_id"), app.clock())
        granted = bool(account_id) and await repo.gift_pack_granted(brand_id, account_id)
    return pack, granted


async def _item_template(conn: Connection, item: MallItem) -> None:
    if item.kind is MallItemKind.COUPON:
        await _templates_exist(conn, item.brand_id, [item.coupon_template_id],
                               "item.coupon_template_id")


async def create_item(app: BenefitsContext, commit_once: CommitOnce[MallItem, Reply],
                      draft: MallItem) -> Reply:
    async def save(conn: Connection) -> MallItem:
        require(draft.brand_id, "item.brand_id")
        item = valid_item(replace(draft, item_id=new_id("itm"), stock_redeemed=0))
        await _item_template(conn, item)
        return await MallRepository(conn).save_item(item, app.clock(), create=True)

    return await commit_once(save)


async def get_item(conn: Connection, brand_id: str, item_id: str, *,
                   lock: bool = False) -> MallItem:
    item = await MallRepository(conn).item(require(brand_id, "brand_id"),
                                           require(item_id, "item_id"), lock=lock)
    return found(item, f"mall item {item_id}", reason="MALL_ITEM_NOT_FOUND", item_id=item_id)


async def update_item(app: BenefitsContext, commit_once: CommitOnce[MallItem, Reply],
                      changed: MallItem) -> Reply:
    async def save(conn: Connection) -> MallItem:
        current = await get_item(conn, changed.brand_id, changed.item_id, lock=True)
        item = valid_item(replace(changed, stock_redeemed=current.stock_redeemed))
        await _item_template(conn, item)
        return await MallRepository(conn).save_item(item, app.clock(), create=False)

    return await commit_once(save)


async def list_items(app: BenefitsContext, brand_id: str, only_on_sale: bool,
                     requested_size: int, token: str) -> tuple[list[MallItem], str]:
    """One page of the brand's items by id: the catalogue (on sale) or all of them (admin)."""
    size, filters, after = _after_page(brand_id, requested_size, token)
    async with app.db.connection() as conn:
        items = await MallRepository(conn).items(brand_id, only_on_sale, after, size + 1)
    return keyset_page(items, size, lambda i: {"after": i.item_id}, filters=filters)
