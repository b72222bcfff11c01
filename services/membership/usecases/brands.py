"""Brands and their shops."""

from __future__ import annotations

from brandclub.events.v1 import membership_events_pb2
from libs.db import Connection
from libs.errors import NotFound, require
from libs.outbox import add_event
from libs.paging import decode_page_token, encode_page_token, page_size
from services.membership.adapters.postgres import MembershipRepository
from services.membership.domain.model import (
    Brand,
    ProgramMode,
    Shop,
    new_id,
    valid_display_name,
    valid_time_zone,
)
from services.membership.usecases.common import PRODUCER, TOPIC, now_utc


async def create_brand(conn: Connection, display_name: str, mode: ProgramMode,
                       time_zone: str) -> Brand:
    brand = Brand(new_id("brd"), valid_display_name(display_name), mode,
                  valid_time_zone(time_zone), now_utc())
    await MembershipRepository(conn).add_brand(brand)
    await add_event(conn, topic=TOPIC, brand_id=brand.brand_id, producer=PRODUCER,
                    payload=membership_events_pb2.BrandCreated(brand_id=brand.brand_id,
                                                               time_zone=brand.time_zone))
    return brand


async def get_brand(conn: Connection, brand_id: str) -> Brand:
    brand = await MembershipRepository(conn).get_brand(require(brand_id, "brand_id"))
    if brand is None:
        raise NotFound(f"brand {brand_id} does not exist", reason="BRAND_NOT_FOUND",
                       metadata={"brand_id": brand_id})
    return brand


async def create_shop(conn: Connection, brand_id: str, display_name: str) -> Shop:
    await get_brand(conn, brand_id)
    shop = Shop(new_id("shp"), brand_id, valid_display_name(display_name), now_utc())
    await MembershipRepository(conn).add_shop(shop)
    return shop


async def get_shop(conn: Connection, shop_id: str) -> Shop:
    shop = await MembershipRepository(conn).get_shop(require(shop_id, "shop_id"))
    if shop is None:
        raise NotFound(f"shop {shop_id} does not exist", reason="SHOP_NOT_FOUND",
                       metadata={"shop_id": shop_id})
    return shop


async def list_shops(conn: Connection, brand_id: str, requested_size: int,
                     token: str) -> tuple[list[Shop], str]:
    brand = await get_brand(conn, brand_id)
    size = page_size(requested_size)
    position = decode_page_token(token, ("after",))
    shops = await MembershipRepository(conn).list_shops(
        brand.brand_id, str(position["after"]) if position else "", size + 1)
    next_token = encode_page_token({"after": shops[size - 1].shop_id}) if len(shops) > size else ""
    return shops[:size], next_token
