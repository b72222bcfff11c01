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

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from libs.errors import Unauthenticated
from services.gateway.api import marketplace
from services.gateway.domain import openplatform
from services.identity.domain.tokens import Kind, TokenCodec
from services.messaging.domain import receipts
from tests.services.signature_cases import (
    CHECKS,
    NOW,
    Check,
    flip,
    open_platform_check,
)


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
    check = open_platform_check()
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
