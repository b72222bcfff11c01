"""AIP-158 paging: page sizes and opaque page tokens."""

from __future__ import annotations

import base64
import json
from typing import Any

from libs.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument("page_size must not be negative", field="page_size")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_page_token(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode()


def decode_page_token(token: str, keys: tuple[str, ...]) -> dict[str, Any] | None:
    """The position a token names, or None for the first page; refuses a forged token."""
    if not token:
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError:
        position = None
    if not isinstance(position, dict) or set(position) != set(keys):
        raise InvalidArgument("page_token is not one this service issued", field="page_token",
                              reason="PAGE_TOKEN_INVALID")
    return position
