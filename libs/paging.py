"""AIP-158 paging: page sizes, signed page tokens and the keyset-page idiom.

A page token is `<key id>.<position>.<signature>`: the position (the keyset of the last item
shown, base64url JSON) and an HMAC-SHA256 over the key id, the position and a digest of the
request's filters, under the first key of PAGE_TOKEN_KEYS (libs.config.SECRETS; every key of the
ring verifies, so keys rotate like the other keyrings). Every replica of every service reads the
same secret, so a token stays valid across replicas and restarts. A token that was edited,
signed elsewhere, names other position keys, or comes back with filters other than those of the
request that issued it is refused: InvalidArgument, field `page_token`, reason
PAGE_TOKEN_INVALID. The position itself is not secret (it is readable base64): it only ever
holds what the caller already saw on the previous page.

The keys are installed once per process by libs.service.start_service (`use_page_token_keys`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from libs.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
PAGE_TOKEN_INVALID = "PAGE_TOKEN_INVALID"

T = TypeVar("T")
Position = dict[str, Any]
Filters = Mapping[str, Any]

_keys: dict[str, bytes] = {}


def use_page_token_keys(keys: Mapping[str, bytes]) -> None:
    """Install the keyring (PAGE_TOKEN_KEYS, in order): the first signs, every one verifies."""
    if not keys:
        raise ValueError("page tokens need at least one signing key")
    _keys.clear()
    _keys.update(keys)


def installed_page_token_keys() -> dict[str, bytes]:
    """A copy of the keyring in use (empty before start-up installs one)."""
    return dict(_keys)


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument("page_size must not be negative", field="page_size")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_page_token(position: Position, *, filters: Filters | None = None) -> str:
    """A signed token for `position`, valid only with the same `filters` (the request's fields
    that select what is listed: brand, status, query, ...; not page_size or page_token)."""
    if not _keys:
        raise RuntimeError("no page token keys installed: libs.service.start_service installs "
                           "PAGE_TOKEN_KEYS (tests: libs.paging.use_page_token_keys)")
    key_id, key = next(iter(_keys.items()))
    body = _b64(_canonical(position))
    return f"{key_id}.{body}.{_b64(_signature(key, key_id, body, filters))}"


def decode_page_token(token: str, keys: tuple[str, ...], *,
                      filters: Filters | None = None) -> Position | None:
    """The position a token names, or None for the first page (empty token); refuses a token
    that is not one this deployment issued for these `filters` with these position `keys`."""
    if not token:
        return None
    if not token.isascii():  # never one we issued; and not comparable as bytes
        raise _invalid("was not issued for this request (edited, foreign, or other filters)")
    signed, _, signature = token.rpartition(".")
    key_id, _, body = signed.rpartition(".")
    key = _keys.get(key_id)
    if key is None or not hmac.compare_digest(
            _b64(_signature(key, key_id, body, filters)).encode(), signature.encode()):
        raise _invalid("was not issued for this request (edited, foreign, or other filters)")
    try:
        position = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, binascii.Error):
        position = None
    if not isinstance(position, dict) or set(position) != set(keys):
        raise _invalid("names another kind of position")
    return position


def keyset_page(rows: Sequence[T], size: int, position_of: Callable[[T], Position], *,
                filters: Filters | None = None) -> tuple[list[T], str]:
    """The fetch-size+1 idiom: `rows` were fetched with LIMIT size + 1; returns the first `size`
    and, when there was one more, the token naming the last row shown (else "")."""
    page = list(rows[:size])
    if len(rows) <= size or not page:
        return page, ""
    return page, encode_page_token(position_of(page[-1]), filters=filters)


def time_and_id(at: datetime, item_id: str) -> Position:
    """The common keyset position: (timestamp, id), newest or oldest first."""
    return {"t": at.isoformat(), "id": item_id}


def decode_time_and_id(token: str, *,
                       filters: Filters | None = None) -> tuple[datetime, str] | None:
    """The (timestamp, id) a `time_and_id` token names, or None for the first page."""
    position = decode_page_token(token, ("t", "id"), filters=filters)
    if position is None:
        return None
    try:
        return datetime.fromisoformat(str(position["t"])), str(position["id"])
    except ValueError:
        raise _invalid("names no valid position") from None


def _invalid(why: str) -> InvalidArgument:
    return InvalidArgument(f"page_token {why}; start again from the first page",
                           field="page_token", reason=PAGE_TOKEN_INVALID)


def _canonical(value: Any) -> bytes:
    # Sorted keys and no spaces: the same filters always digest to the same bytes; values JSON
    # cannot hold (datetimes, enums, decimals) are compared by their text.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def _signature(key: bytes, key_id: str, body: str, filters: Filters | None) -> bytes:
    filters_digest = hashlib.sha256(_canonical(dict(filters or {}))).hexdigest()
    return hmac.new(key, f"{key_id}.{body}.{filters_digest}".encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
