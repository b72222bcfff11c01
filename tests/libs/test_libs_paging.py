"""libs.paging: page tokens are signed, bound to the request's filters and to the keyring of the
deployment; the keyset-page helper issues a token only when there is a next page."""

from __future__ import annotations

import ast
import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from libs import paging
from libs.errors import InvalidArgument
from libs.paging import (
    decode_page_token,
    decode_time_and_id,
    encode_page_token,
    keyset_page,
    page_size,
    time_and_id,
    use_page_token_keys,
)

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
FILTERS = {"brand_id": "brand_1", "status": "ACTIVE"}


@pytest.fixture(autouse=True)
def keys() -> Iterator[None]:
    saved = dict(paging._keys)
    use_page_token_keys({"k1": KEY})
    yield
    paging._keys.clear()
    paging._keys.update(saved)


def refused(token: str, filters: dict[str, str], keys: tuple[str, ...] = ("after",)) -> str:
    with pytest.raises(InvalidArgument) as caught:
        decode_page_token(token, keys, filters=filters)
    assert caught.value.field == "page_token"
    assert caught.value.reason == "PAGE_TOKEN_INVALID"
    return str(caught.value)


def test_a_token_round_trips_with_the_same_filters() -> None:
    token = encode_page_token({"after": "m_9"}, filters=FILTERS)
    assert decode_page_token(token, ("after",), filters=dict(FILTERS)) == {"after": "m_9"}
    # Filter order does not matter, only their values.
    reordered = {"status": "ACTIVE", "brand_id": "brand_1"}
    assert decode_page_token(token, ("after",), filters=reordered) == {"after": "m_9"}


def test_no_token_is_the_first_page() -> None:
    assert decode_page_token("", ("after",), filters=FILTERS) is None


def test_call_sites_without_filters_keep_working() -> None:
    token = encode_page_token({"before": 41})
    assert decode_page_token(token, ("before",)) == {"before": 41}


@pytest.mark.parametrize("other", [
    {"brand_id": "brand_2", "status": "ACTIVE"},  # another brand's listing
    {"brand_id": "brand_1", "status": "PAUSED"},  # the same brand, another filter value
    {"brand_id": "brand_1"},  # a filter dropped
    {"brand_id": "brand_1", "status": "ACTIVE", "query": "x"},  # a filter added
    {},
])
def test_a_token_used_with_other_filters_is_refused(other: dict[str, str]) -> None:
    token = encode_page_token({"after": "m_9"}, filters=FILTERS)
    assert "filters" in refused(token, other)


def test_an_edited_position_is_refused() -> None:
    """Swapping in another position (a forged keyset) breaks the signature."""
    token = encode_page_token({"after": "m_9"}, filters=FILTERS)
    key_id, _, signature = token.split(".")
    forged_body = base64.urlsafe_b64encode(json.dumps({"after": "m_1"}).encode())
    refused(f"{key_id}.{forged_body.decode().rstrip('=')}.{signature}", FILTERS)


@pytest.mark.parametrize("token", [
    "garbage", "a.b", "a.b.c", "...", "k1..", "k1.e30.", "%%%.%%%.%%%", "k1.é.ü", "\udcff",
    # The unsigned format issued before tokens were signed.
    base64.urlsafe_b64encode(b'{"after":"m_9"}').decode(),
])
def test_a_malformed_or_unsigned_token_is_refused(token: str) -> None:
    refused(token, FILTERS)


def test_every_character_flip_is_refused() -> None:
    """Sweep: no single-character edit anywhere in a token yields an accepted token."""
    token = encode_page_token({"after": "m_9"}, filters=FILTERS)
    for index, char in enumerate(token):
        flipped = token[:index] + ("A" if char != "A" else "B") + token[index + 1:]
        refused(flipped, FILTERS)


def test_a_token_signed_with_another_key_is_refused() -> None:
    """A token from another deployment (or forged with a guessed key) does not verify."""
    use_page_token_keys({"k1": OTHER_KEY})
    foreign = encode_page_token({"after": "m_9"}, filters=FILTERS)
    use_page_token_keys({"k1": KEY})
    refused(foreign, FILTERS)


def test_keys_rotate_like_the_other_keyrings() -> None:
    """The first key signs; a token signed by an older key still verifies while that key is
    in the ring, and is refused once it is removed."""
    old = encode_page_token({"after": "m_9"}, filters=FILTERS)
    use_page_token_keys({"k2": OTHER_KEY, "k1": KEY})
    assert decode_page_token(old, ("after",), filters=FILTERS) == {"after": "m_9"}
    new = encode_page_token({"after": "m_9"}, filters=FILTERS)
    assert new.startswith("k2.")
    use_page_token_keys({"k2": OTHER_KEY})
    refused(old, FILTERS)
    assert decode_page_token(new, ("after",), filters=FILTERS) == {"after": "m_9"}


def test_a_token_of_another_kind_of_position_is_refused() -> None:
    """A token of another listing (other position keys) is refused even with equal filters."""
    token = encode_page_token({"t": "2026-01-01T00:00:00+00:00", "id": "x"}, filters=FILTERS)
    assert "position" in refused(token, FILTERS, ("after",))


def test_no_keys_is_a_start_up_error_not_an_unsigned_token() -> None:
    paging._keys.clear()
    with pytest.raises(RuntimeError, match="PAGE_TOKEN_KEYS"):
        encode_page_token({"after": "m_9"})
    with pytest.raises(ValueError):
        use_page_token_keys({})


def test_time_and_id_positions_round_trip() -> None:
    at = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    token = encode_page_token(time_and_id(at, "act_7"), filters=FILTERS)
    assert decode_time_and_id(token, filters=FILTERS) == (at, "act_7")
    assert decode_time_and_id("", filters=FILTERS) is None
    bad = encode_page_token({"t": "not a time", "id": "act_7"}, filters=FILTERS)
    with pytest.raises(InvalidArgument, match="page_token"):
        decode_time_and_id(bad, filters=FILTERS)


@pytest.mark.parametrize(("fetched", "has_next"), [(0, False), (2, False), (3, False),
                                                   (4, True)])
def test_keyset_page_takes_size_and_names_the_last_row_shown(fetched: int,
                                                             has_next: bool) -> None:
    """Rows are fetched with LIMIT size + 1: the extra row only says a next page exists."""
    rows = [f"m_{n}" for n in range(fetched)]
    page, token = keyset_page(rows, 3, lambda row: {"after": row}, filters=FILTERS)
    assert page == rows[:3]
    assert bool(token) is has_next
    if has_next:
        assert decode_page_token(token, ("after",), filters=FILTERS) == {"after": "m_2"}


def test_page_size_defaults_caps_and_refuses_negatives() -> None:
    assert page_size(0) == paging.DEFAULT_PAGE_SIZE
    assert page_size(7) == 7
    assert page_size(10_000) == paging.MAX_PAGE_SIZE
    with pytest.raises(InvalidArgument, match="page_size"):
        page_size(-1)


# --- sweep: every list binds its tokens to its filters ----------------------------------------

SERVICES = Path(__file__).resolve().parents[2] / "services"
TOKEN_CALLS = {"encode_page_token", "decode_page_token", "keyset_page", "decode_time_and_id"}
# Lists not yet passing their filters when the signed tokens landed (issue 12: their services
# are adopting them); drop an entry once its file passes `filters=`.
ADOPTING = {
    "services/engagement/usecases/activities.py",
    "services/engagement/usecases/lottery.py",
    "services/engagement/usecases/rewards.py",
    "services/engagement/usecases/social.py",
}


def unbound_token_calls(source: str) -> list[int]:
    """Lines of calls that issue or read a page token without saying which filters it is for."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in TOKEN_CALLS and not any(k.arg == "filters" for k in node.keywords):
                lines.append(node.lineno)
    return lines


def test_the_sweep_finds_a_call_without_filters() -> None:
    assert unbound_token_calls("decode_page_token(token, ('after',))\n"
                               "keyset_page(rows, size, at, filters={'brand_id': b})\n") == [1]


def test_every_page_token_in_the_services_names_its_filters() -> None:
    """A token issued for one listing must not page another: each call passes `filters=` (an
    empty mapping when the list truly has none besides what the position already pins)."""
    offenders = [f"{path.relative_to(SERVICES.parent)}:{line}"
                 for path in sorted(SERVICES.rglob("*.py"))
                 for line in unbound_token_calls(path.read_text())
                 if str(path.relative_to(SERVICES.parent)) not in ADOPTING]
    assert not offenders, offenders
