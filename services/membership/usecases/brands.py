"""Brands and their shops."""

from __future__ import annotations

from brandclub.events.v1 import membership_events_pb2
from libs.db import Connection
from libs.errors import found, require
from libs.idempotency import CommitOnce, Reply
from libs.outbox import add_event
from libs.paging import decode_page_token, keyset_page, page_size
from services.membership.adapters.brands_repository import BrandRepository
from services.membership.domain.model import (
    Brand,
    ProgramMode,
    Shop,
    new_id,
    valid_display_name,
    valid_time_zone,
)
from services.membership.usecases.context import Context
from services.membership.usecases.events import PRODUCER, TOPIC


async def create_brand(context: Context, display_name: str, mode: ProgramMode,
                       time_zone: str, commit_once: CommitOnce[Brand, Reply]) -> Reply:
    """CreateBrand: the brand and its BrandCreated event, committed once."""
    async def add(conn: Connection) -> Brand:
        brand = Brand(new_id("brd"), valid_display_name(display_name), mode,
                      valid_time_zone(time_zone), context.clock())
        await BrandRepository(conn).add_brand(brand)
        await add_event(conn, topic=TOPIC, brand_id=brand.brand_id, producer=PRODUCER,
                        payload=membership_events_pb2.BrandCreated(brand_id=brand.brand_id,
                                                                   time_zone=brand.time_zone))
        return brand

    return await commit_once(add)


async def get_brand(context: Context, brand_id: str) -> Brand:
    async with context.db.connection() as conn:
        return await existing_brand(conn, brand_id)


async def existing_brand(conn: Connection, brand_id: str) -> Brand:
    """The brand, or NotFound BRAND_NOT_FOUND."""
    return found(await BrandRepository(conn).get_brand(require(brand_id, "brand_id")),
                 f"brand {brand_id}", reason="BRAND_NOT_FOUND", brand_id=brand_id)


async def create_shop(context: Context, brand_id: str, display_name: str,
                      commit_once: CommitOnce[Shop, Reply]) -> Reply:
    """CreateShop: a shop of an existing brand, committed once."""
    async def add(conn: Connection) -> Shop:
        await existing_brand(conn, brand_id)
        shop = Shop(new_id("shp"), brand_id, valid_display_name(display_name), context.clock())
        await BrandRepository(conn).add_shop(shop)
        return shop

    return await commit_once(add)


async def get_shop(context: Context, shop_id: str) -> Shop:
    async with context.db.connection() as conn:
        return await existing_shop(conn, shop_id)


async def existing_shop(conn: Connection, shop_id: str) -> Shop:
    """The shop, or NotFound SHOP_NOT_FOUND."""
    return found(await BrandRepository(conn).get_shop(require(shop_id, "shop_id")),
                 f"shop {shop_id}", reason="SHOP_NOT_FOUND", shop_id=shop_id)


async def list_shops(context: Context, brand_id: str, requested_size: int,
                     token: str) -> tuple[list[Shop], str]:
    """A page of the brand's shops in id order, and the token of the next page."""
    async with context.db.connection() as conn:
        brand = await existing_brand(conn, brand_id)
        size = page_size(requested_size)
        filters = {"brand_id": brand.brand_id}
        position = decode_page_token(token, ("after",), filters=filters)
        shops = await BrandRepository(conn).list_shops(
            brand.brand_id, str(position["after"]) if position else "", size + 1)
    return keyset_page(shops, size, lambda shop: {"after": shop.shop_id}, filters=filters)
