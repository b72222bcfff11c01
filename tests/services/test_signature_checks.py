"""Every signature, token and secret check refuses a one-character change at either end.

A check that compares only a prefix (the first 8 hex characters, say) or only a suffix passes
every test that sends a wholly wrong value; these change exactly one character at the start
and one at the end of an otherwise valid credential, and also check the unchanged credential
is accepted (so a check that refuses everything fails here too). The sweep, one case each:
the open platform's request `sign`, shopper and merchant session tokens, the marketplace
webhook signature, signed delivery receipts, the koi draw's commit-reveal, merchant
passwords. The ISV credentials kept in the database (app secret, authorization code, access
and refresh tokens) are swept over gRPC in tests/services/identity_isv.

Timestamp windows of the signed requests are tested on their boundary here as well.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from libs.errors import InvalidArgument, Unauthenticated
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


def _open_platform() -> Check:
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


def _checks() -> list[Check]:
    from services.engagement.domain.participation import koi_winners

    return [_open_platform(), _session_token(Kind.SHOPPER, ""),
            _session_token(Kind.MERCHANT, "brd_1"), _marketplace_webhook(),
            _delivery_receipt(), *_koi(koi_winners(SEED, ENTRANTS, 2)), _merchant_password()]


CHECKS = _checks()


@pytest.mark.parametrize("check", CHECKS, ids=[c.name for c in CHECKS])
def test_valid_credential_is_accepted(check: Check) -> None:
    """The unchanged credential passes (so the refusals below are about the change)."""
    assert check.accepts(check.valid)


@pytest.mark.parametrize("where", ["first", "last"])
@pytest.mark.parametrize("check", CHECKS, ids=[c.name for c in CHECKS])
def test_one_character_change_is_refused(check: Check, where: str) -> None:
    """Changing only the first, or only the last, character of the credential is refused."""
    candidate = flip(check.valid, 0 if where == "first" else -1)
    assert candidate != check.valid and len(candidate) == len(check.valid)
    assert not check.accepts(candidate)


@pytest.mark.parametrize("check", CHECKS, ids=[c.name for c in CHECKS])
def test_truncated_or_extended_credential_is_refused(check: Check) -> None:
    """A prefix of the credential, or the credential with a character added, is refused."""
    assert not check.accepts(check.valid[:-1])
    assert not check.accepts(check.valid[:8])
    assert not check.accepts(check.valid + check.valid[-1])


def test_open_platform_sign_is_case_insensitive_but_exact() -> None:
    """The SDK's upper-case hex and lower-case hex both pass; a change in the middle does not."""
    check = _open_platform()
    assert check.accepts(check.valid.lower())
    assert not check.accepts(flip(check.valid, 16))


def test_session_token_payload_change_is_refused() -> None:
    """Claims edited under a kept signature (another subject) are refused."""
    codec = TokenCodec({"k1": b"k" * 32})
    token, _ = codec.issue(Kind.SHOPPER, "acc_1", now=NOW, ttl=timedelta(hours=1))
    other, _ = codec.issue(Kind.SHOPPER, "acc_2", now=NOW, ttl=timedelta(hours=1))
    version, kid, _, signature = token.split(".")
    forged = ".".join([version, kid, other.split(".")[2], signature])
    with pytest.raises(Unauthenticated):
        codec.verify(forged, now=NOW)


# --- the time windows of signed requests, on their boundary -------------------------------


def test_session_token_expires_exactly_at_its_expiry() -> None:
    """A token is valid up to one second before expire_time and refused from it on."""
    codec = TokenCodec({"k1": b"k" * 32})
    token, claims = codec.issue(Kind.SHOPPER, "acc_1", now=NOW, ttl=timedelta(hours=1))
    assert codec.verify(token, now=claims.expires_at - timedelta(seconds=1)).subject == "acc_1"
    with pytest.raises(Unauthenticated):
        codec.verify(token, now=claims.expires_at)


def test_open_platform_timestamp_window_edges() -> None:
    """A request timestamp exactly 6 minutes off either way passes; a second more does not."""
    window = openplatform.TIMESTAMP_WINDOW
    for offset in (window, -window):
        stamp = (NOW + offset).astimezone(openplatform.DEFAULT_OFFSET)
        openplatform.check_timestamp(stamp.strftime("%Y-%m-%d %H:%M:%S"), NOW)
        late = stamp + (timedelta(seconds=1) if offset > timedelta(0) else -timedelta(seconds=1))
        with pytest.raises(openplatform.ProtocolError):
            openplatform.check_timestamp(late.strftime("%Y-%m-%d %H:%M:%S"), NOW)


@pytest.mark.parametrize("verify, window", [
    (lambda stamp, now: marketplace.verify(
        b"s", stamp, marketplace.sign(b"s", stamp, b"{}"), b"{}", now),
     marketplace.WINDOW_SECONDS),
    (lambda stamp, now: receipts.verify_signature(
        "s", stamp, b"{}", receipts.sign("s", stamp, b"{}"),
        datetime.fromtimestamp(now, UTC)),
     receipts.WINDOW_SECONDS),
], ids=["marketplace webhook", "delivery receipt"])
def test_signed_webhook_timestamp_window_edges(verify: Callable[[str, float], None],
                                               window: int) -> None:
    """A correctly signed body exactly `window` seconds off either way passes; one more fails."""
    now = NOW.timestamp()
    for sign in (1, -1):
        verify(str(int(now + sign * window)), now)
        with pytest.raises(Unauthenticated):
            verify(str(int(now + sign * (window + 1))), now)
