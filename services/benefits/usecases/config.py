"""The brand's configuration: points policy, earning rules, tier multipliers, coupon
templates, gift packs and mall items."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from libs.db import Connection
from libs.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, require
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
    valid_gift_pack,
    valid_item,
    valid_multipliers,
    valid_rule,
    valid_template,
)
from services.benefits.domain.points import PointsPolicy, new_id, valid_policy
from services.benefits.usecases.ledger import now_utc, policy_of


async def get_policy(conn: Connection, brand_id: str) -> PointsPolicy:
    return await policy_of(conn, require(brand_id, "brand_id"))


async def update_policy(conn: Connection, policy: PointsPolicy) -> PointsPolicy:
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
    return await repo.save_policy(valid_policy(policy), now_utc())


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


async def create_rule(conn: Connection, rule: EarningRule) -> EarningRule:
    require(rule.brand_id, "rule.brand_id")
    now = now_utc()
    rule = valid_rule(replace(rule, rule_id=new_id("rul"), created_at=now, updated_at=now))
    repo = ConfigRepository(conn)
    await _one_order_rule(repo, rule)
    return await repo.add_rule(rule)


async def get_rule(conn: Connection, brand_id: str, rule_id: str) -> EarningRule:
    rule = await ConfigRepository(conn).rule(require(brand_id, "brand_id"),
                                             require(rule_id, "rule_id"))
    if rule is None:
        raise NotFound(f"earning rule {rule_id} does not exist", reason="RULE_NOT_FOUND",
                       metadata={"rule_id": rule_id})
    return rule


async def update_rule(conn: Connection, rule: EarningRule) -> EarningRule:
    current = await get_rule(conn, rule.brand_id, rule.rule_id)
    if rule.trigger is not current.trigger:
        raise FailedPrecondition("an earning rule's trigger cannot change",
                                 reason="TRIGGER_IMMUTABLE", metadata={"field": "rule.trigger"})
    repo = ConfigRepository(conn)
    await repo.rule(rule.brand_id, rule.rule_id, lock=True)
    rule = valid_rule(rule)
    await _one_order_rule(repo, rule)
    return await repo.update_rule(rule, now_utc())


async def list_rules(conn: Connection, brand_id: str, after: str | None,
                     limit: int) -> list[EarningRule]:
    return await ConfigRepository(conn).rules(require(brand_id, "brand_id"), after, limit)


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


async def list_multipliers(conn: Connection, brand_id: str) -> dict[int, int]:
    return await ConfigRepository(conn).multipliers(require(brand_id, "brand_id"))


async def create_template(conn: Connection, template: CouponTemplate) -> CouponTemplate:
    require(template.brand_id, "template.brand_id")
    template = valid_template(replace(template, template_id=new_id("cpt"), closed=False,
                                      issued_count=0))
    return await CouponRepository(conn).save_template(template, now_utc(), create=True)


async def get_template(conn: Connection, brand_id: str, template_id: str, *,
                       lock: bool = False) -> CouponTemplate:
    template = await CouponRepository(conn).template(
        require(brand_id, "brand_id"), require(template_id, "template_id"), lock=lock)
    if template is None:
        raise NotFound(f"coupon template {template_id} does not exist",
                       reason="COUPON_TEMPLATE_NOT_FOUND", metadata={"template_id": template_id})
    return template


async def update_template(conn: Connection, template: CouponTemplate) -> CouponTemplate:
    current = await get_template(conn, template.brand_id, template.template_id, lock=True)
    if current.closed:
        raise FailedPrecondition("a closed coupon template cannot change",
                                 reason="COUPON_TEMPLATE_CLOSED",
                                 metadata={"template_id": template.template_id})
    template = valid_template(replace(template, closed=False,
                                      issued_count=current.issued_count))
    return await CouponRepository(conn).save_template(template, now_utc(), create=False)


async def close_template(conn: Connection, brand_id: str, template_id: str) -> CouponTemplate:
    current = await get_template(conn, brand_id, template_id, lock=True)
    return await CouponRepository(conn).save_template(replace(current, closed=True), now_utc(),
                                                      create=False)


async def list_templates(conn: Connection, brand_id: str, after: str | None,
                         limit: int) -> list[CouponTemplate]:
    return await CouponRepository(conn).templates(require(brand_id, "brand_id"), after, limit)


async def _templates_exist(conn: Connection, brand_id: str, ids: list[str],
                           field_prefix: str) -> None:
    repo = CouponRepository(conn)
    for index, template_id in enumerate(ids):
        if await repo.template(brand_id, template_id) is None:
            raise NotFound(f"coupon template {template_id} does not exist",
                           reason="COUPON_TEMPLATE_NOT_FOUND",
                           metadata={"template_id": template_id,
                                     "field": field_prefix.format(index=index)})


async def create_gift_pack(conn: Connection, pack: GiftPack) -> GiftPack:
    brand_id = require(pack.brand_id, "gift_pack.brand_id")
    pack = valid_gift_pack(replace(pack, gift_pack_id=new_id("gfp")))
    await _templates_exist(conn, brand_id, [c[0] for c in pack.coupons],
                           "gift_pack.coupons[{index}].coupon_template_id")
    return await CouponRepository(conn).save_gift_pack(pack, now_utc(), create=True)


async def update_gift_pack(conn: Connection, pack: GiftPack) -> GiftPack:
    repo = CouponRepository(conn)
    if await repo.gift_pack(require(pack.brand_id, "gift_pack.brand_id"),
                            require(pack.gift_pack_id, "gift_pack.gift_pack_id")) is None:
        raise NotFound(f"gift pack {pack.gift_pack_id} does not exist",
                       reason="GIFT_PACK_NOT_FOUND", metadata={"gift_pack_id": pack.gift_pack_id})
    pack = valid_gift_pack(pack)
    await _templates_exist(conn, pack.brand_id, [c[0] for c in pack.coupons],
                           "gift_pack.coupons[{index}].coupon_template_id")
    return await repo.save_gift_pack(pack, now_utc(), create=False)


async def list_gift_packs(conn: Connection, brand_id: str, after: str | None,
                          limit: int) -> list[GiftPack]:
    return await CouponRepository(conn).gift_packs(require(brand_id, "brand_id"), after, limit)


async def card_opening_gift_pack(conn: Connection, brand_id: str, account_id: str
                                 ) -> tuple[GiftPack | None, bool]:
    repo = CouponRepository(conn)
    pack = await repo.active_gift_pack(require(brand_id, "brand_id"), now_utc())
    granted = bool(account_id) and await repo.gift_pack_granted(brand_id, account_id)
    return pack, granted


async def _item_template(conn: Connection, item: MallItem) -> None:
    if item.kind is MallItemKind.COUPON:
        await _templates_exist(conn, item.brand_id, [item.coupon_template_id],
                               "item.coupon_template_id")


async def create_item(conn: Connection, item: MallItem) -> MallItem:
    require(item.brand_id, "item.brand_id")
    item = valid_item(replace(item, item_id=new_id("itm"), stock_redeemed=0))
    await _item_template(conn, item)
    return await MallRepository(conn).save_item(item, now_utc(), create=True)


async def get_item(conn: Connection, brand_id: str, item_id: str, *,
                   lock: bool = False) -> MallItem:
    item = await MallRepository(conn).item(require(brand_id, "brand_id"),
                                           require(item_id, "item_id"), lock=lock)
    if item is None:
        raise NotFound(f"mall item {item_id} does not exist", reason="MALL_ITEM_NOT_FOUND",
                       metadata={"item_id": item_id})
    return item


async def update_item(conn: Connection, item: MallItem) -> MallItem:
    current = await get_item(conn, item.brand_id, item.item_id, lock=True)
    item = valid_item(replace(item, stock_redeemed=current.stock_redeemed))
    await _item_template(conn, item)
    return await MallRepository(conn).save_item(item, now_utc(), create=False)


async def list_items(conn: Connection, brand_id: str, only_on_sale: bool, after: str | None,
                     limit: int) -> list[MallItem]:
    return await MallRepository(conn).items(require(brand_id, "brand_id"), only_on_sale, after,
                                            limit)
