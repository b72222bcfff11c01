"""Signed session tokens: `v1.<kid>.<claims>.<signature>`.

Claims are compact JSON, base64url-encoded; the signature is HMAC-SHA256 over
"v1.<kid>.<claims>" with the key named by kid. New tokens are signed with the first key of the
keyring; every key in it verifies, so keys rotate by adding the new one first and removing the
old one once its tokens have expired.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from libs.errors import Unauthenticated

VERSION = "v1"


class Kind(enum.Enum):
    SHOPPER = "shopper"
    MERCHANT = "merchant"


@dataclass(frozen=True)
class Claims:
    kind: Kind
    subject: str  # account id for shoppers, merchant user id for merchants
    brand_id: str  # merchants only: the one brand the token is scoped to
    issued_at: datetime
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _invalid(reason: str, message: str) -> Unauthenticated:
    return Unauthenticated(message, reason=reason)


class TokenCodec:
    def __init__(self, keys: dict[str, bytes]) -> None:
        if not keys:
            raise ValueError("a token keyring needs at least one key")
        self._keys = dict(keys)
        self._signing_kid = next(iter(keys))

    def _sign(self, kid: str, body: str) -> str:
        return _b64(hmac.new(self._keys[kid], body.encode(), hashlib.sha256).digest())

    def issue(self, kind: Kind, subject: str, *, now: datetime, ttl: timedelta,
              brand_id: str = "") -> tuple[str, Claims]:
        claims = Claims(kind, subject, brand_id, now, now + ttl)
        payload = {"k": kind.value, "sub": subject, "iat": int(now.timestamp()),
                   "exp": int(claims.expires_at.timestamp())}
        if brand_id:
            payload["brd"] = brand_id
        encoded = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        body = f"{VERSION}.{self._signing_kid}.{encoded}"
        return f"{body}.{self._sign(self._signing_kid, body)}", claims

    def verify(self, token: str, *, now: datetime) -> Claims:
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != VERSION:
            raise _invalid("TOKEN_MALFORMED", "token is not a Brandclub v1 token")
        _, kid, encoded, signature = parts
        if kid not in self._keys:
            raise _invalid("TOKEN_KEY_UNKNOWN", "token was signed with a key that is not trusted")
        body = f"{VERSION}.{kid}.{encoded}"
        # Non-ASCII text is no signature (and would make compare_digest raise TypeError).
        if not signature.isascii() or not hmac.compare_digest(self._sign(kid, body), signature):
            raise _invalid("TOKEN_SIGNATURE_INVALID", "token signature does not match")
        try:
            payload = json.loads(_unb64(encoded))
            claims = Claims(
                Kind(payload["k"]), str(payload["sub"]), str(payload.get("brd", "")),
                datetime.fromtimestamp(int(payload["iat"]), UTC),
                datetime.fromtimestamp(int(payload["exp"]), UTC),
            )
        except (ValueError, KeyError, TypeError):
            raise _invalid("TOKEN_MALFORMED", "token claims are unreadable") from None
        if claims.expires_at <= now:
            raise _invalid("TOKEN_EXPIRED", "token has expired")
        return claims
