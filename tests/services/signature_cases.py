"""The credential checks the signature sweeps run over (one valid credential and an
acceptance predicate each), and `flip`, which changes one character within its alphabet.

Shared by tests/services/test_signature_checks.py, test_non_ascii_credentials.py and the
ISV credential tampering tests; a new signature, token or secret check gets its case here.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from libs.errors import InvalidArgument, Unauthenticated
from libs.paging import (
    decode_page_token,
    encode_page_token,
    installed_page_token_keys,
    use_page_token_keys,
)
from services.engagement.domain.participation import commitment, verify_koi
from services.gateway.api import marketplace
from services.gateway.domain import openplatform
from services.identity.domain.merchants import hash_password, password_matches
from services.identity.domain.tokens import Kind, TokenCodec
from services.messaging.domain import receipts

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HEX = "0123456789abcdef"
B64URL = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def flip(value: str, index: int) -> str:
    """`value` with the character at `index` replaced by another of the same alphabet, one
    that differs in its high bits (so no decoding can map both to the same bytes)."""
    char = value[index]
    for alphabet in (HEX, HEX.upper(), B64URL):
        if char in alphabet:
            replacement = alphabet[(alphabet.index(char) + len(alphabet) // 2) % len(alphabet)]
            break
    else:
        replacement = "x" if char != "x" else "y"
    position = index % len(value)
    return value[:position] + replacement + value[position + 1:]


@dataclass(frozen=True)
class Check:
    """A valid credential and a predicate saying whether the check accepts a candidate."""

    name: str
    valid: str
    accepts: Callable[[str], bool]


def _refused(call: Callable[[], object]) -> bool:
    try:
        call()
    except Unauthenticated:
        return False
    return True


def open_platform_check() -> Check:
    secret = "s3cr3t-app-secret"
    params = {"method": "jingdong.pop.crm.getMember", "app_key": "ak_1",
              "access_token": "at_1", "timestamp": "2026-03-01 20:00:00", "v": "2.0",
              "360buy_param_json": '{"customerPin":"jack"}'}
    return Check("open platform sign", openplatform.compute_sign(secret, params),
                 lambda sign: openplatform.sign_matches(secret, params, sign))


def _session_token(kind: Kind, brand_id: str) -> Check:
    codec = TokenCodec({"k1": b"k" * 32})
    token, _ = codec.issue(kind, "acc_1", now=NOW, ttl=timedelta(hours=1), brand_id=brand_id)
    return Check(f"{kind.value} token", token,
                 lambda candidate: _refused(lambda: codec.verify(candidate, now=NOW)))


def _marketplace_webhook() -> Check:
    secret, body, stamp = b"webhook-secret", b'{"event_id":"e1"}', str(int(NOW.timestamp()))
    return Check("marketplace webhook signature", marketplace.sign(secret, stamp, body),
                 lambda sig: _refused(lambda: marketplace.verify(
                     secret, stamp, sig, body, NOW.timestamp())))


def _delivery_receipt() -> Check:
    secret, body, stamp = "receipt-secret", b'{"receipts":[]}', str(int(NOW.timestamp()))
    return Check("delivery receipt signature", receipts.sign(secret, stamp, body),
                 lambda sig: _refused(lambda: receipts.verify_signature(
                     secret, stamp, body, sig, NOW)))


SEED = bytes(range(32))
ENTRANTS = ["acc_a", "acc_b", "acc_c", "acc_d"]


def _koi(winners: list[str]) -> list[Check]:
    return [
        Check("koi commitment", commitment(SEED),
              lambda claimed: verify_koi(SEED.hex(), claimed, ENTRANTS, 2, winners).valid),
        Check("koi seed", SEED.hex(), lambda seed: _koi_seed_accepted(seed, winners)),
    ]


def _koi_seed_accepted(seed_hex: str, winners: list[str]) -> bool:
    try:
        return verify_koi(seed_hex, commitment(SEED), ENTRANTS, 2, winners).valid
    except InvalidArgument:  # not hex at all
        return False


def _merchant_password() -> Check:
    stored = hash_password("correct horse battery")
    return Check("merchant password", "correct horse battery",
                 lambda password: password_matches(password, stored))


PAGE_KEYS = {"p1": b"p" * 32}
PAGE_FILTERS = {"brand_id": "brd_1", "status": "ACTIVE"}


def _with_page_keys(call: Callable[[], object]) -> object:
    """Run `call` under this check's page token keys, then put back the process's own."""
    in_use = installed_page_token_keys()
    use_page_token_keys(PAGE_KEYS)
    try:
        return call()
    finally:
        if in_use:
            use_page_token_keys(in_use)


def _page_token_accepted(token: str) -> bool:
    try:
        _with_page_keys(lambda: decode_page_token(token, ("after",), filters=PAGE_FILTERS))
    except InvalidArgument:
        return False
    return True


def _page_token() -> Check:
    token = _with_page_keys(lambda: encode_page_token({"after": "m_9"}, filters=PAGE_FILTERS))
    assert isinstance(token, str)
    return Check("page token", token, _page_token_accepted)


def _checks() -> list[Check]:
    from services.engagement.domain.participation import koi_winners

    return [open_platform_check(), _session_token(Kind.SHOPPER, ""),
            _session_token(Kind.MERCHANT, "brd_1"), _marketplace_webhook(),
            _delivery_receipt(), *_koi(koi_winners(SEED, ENTRANTS, 2)), _merchant_password(),
            _page_token()]


CHECKS = _checks()
