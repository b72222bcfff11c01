"""Keyset paging over a brand's items, newest first (templates, campaigns, journeys)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from libs.errors import InvalidArgument, require
from libs.paging import decode_page_token, encode_page_token, page_size

T = TypeVar("T")


async def brand_page(brand_id: str, requested_size: int, token: str,
                     fetch: Callable[[str, int, tuple[datetime, str] | None],
                                     Awaitable[list[T]]],
                     position_of: Callable[[T], tuple[datetime, str]]) -> tuple[list[T], str]:
    """One page of a brand's items, newest first; the token names the last one shown."""
    brand_id = require(brand_id, "brand_id")
    size = page_size(requested_size)
    position = decode_page_token(token, ("t", "id"))
    after = None
    if position:
        try:
            after = (datetime.fromisoformat(str(position["t"])), str(position["id"]))
        except ValueError:
            raise InvalidArgument("page_token is not one this service issued",
                                  field="page_token", reason="PAGE_TOKEN_INVALID") from None
    items = await fetch(brand_id, size + 1, after)
    page = items[:size]
    if len(items) <= size:
        return page, ""
    last_at, last_id = position_of(page[-1])
    return page, encode_page_token({"t": last_at.isoformat(), "id": last_id})
