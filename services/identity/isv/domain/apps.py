"""ISV apps and the shops' authorisations of them."""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from libs.errors import InvalidArgument, PermissionDenied, require

# Every scope a shop can grant. The gateway's method catalogue names one of these per method.
KNOWN_SCOPES: tuple[str, ...] = (
    "member.read",
    "points.read",
    "points.write",
    "coupon.read",
    "coupon.write",
    "activity.read",
    "activity.write",
    "giftpack.read",
    "giftpack.write",
)

DEFAULT_CALLS_PER_MINUTE = 600
DEFAULT_CALLS_PER_DAY = 200_000
MAX_CALLS_PER_MINUTE = 1_000_000
MAX_CALLS_PER_DAY = 100_000_000

CODE_TTL = timedelta(minutes=10)
# The marketplace gives apps in test 24-hour tokens and live apps long-lived ones.
ACCESS_TTL = {"test": timedelta(hours=24), "production": timedelta(days=365)}
REFRESH_TTL = {"test": timedelta(days=30), "production": timedelta(days=730)}

_APP_KEY = re.compile(r"^[A-F0-9]{32}$")


class AppStatus(enum.Enum):
    TEST = "test"
    PRODUCTION = "production"
    SUSPENDED = "suspended"


@dataclass(frozen=True)
class App:
    app_key: str
    name: str
    status: AppStatus
    scopes: tuple[str, ...]
    redirect_uri: str
    calls_per_minute: int
    calls_per_day: int
    created_at: datetime

    def require_active(self) -> None:
        if self.status is AppStatus.SUSPENDED:
            raise PermissionDenied(f"app {self.app_key} is suspended", reason="APP_SUSPENDED",
                                   metadata={"app_key": self.app_key})

    def access_ttl(self) -> timedelta:
        return ACCESS_TTL.get(self.status.value, ACCESS_TTL["test"])

    def refresh_ttl(self) -> timedelta:
        return REFRESH_TTL.get(self.status.value, REFRESH_TTL["test"])


@dataclass(frozen=True)
class Authorization:
    authorization_id: str
    app_key: str
    app_name: str
    brand_id: str
    shop_id: str
    scopes: tuple[str, ...]
    granted_by: str
    granted_at: datetime
    revoked_at: datetime | None

    def live_for(self, app_key: str) -> bool:
        """Not revoked, and granted to this app (a code or token of another app's
        authorisation is no credential of this one)."""
        return self.revoked_at is None and self.app_key == app_key


@dataclass(frozen=True)
class AuthorizationCode:
    """A one-time code (stored as its hash) for exchanging into a token pair."""

    code_hash: bytes
    authorization_id: str
    expires_at: datetime
    used_at: datetime | None

    def usable(self, now: datetime) -> bool:
        return self.used_at is None and now < self.expires_at


@dataclass(frozen=True)
class IssuedToken:
    """An access or refresh token (stored as its hash) of one pair of one authorisation."""

    authorization_id: str
    pair_id: str
    expires_at: datetime
    revoked_at: datetime | None

    def valid(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


def new_app_key() -> str:
    return secrets.token_hex(16).upper()


def new_app_secret() -> str:
    return secrets.token_hex(16)


def new_opaque_token() -> str:
    """Codes, access and refresh tokens: 256 random bits, url-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def valid_app_key(value: str) -> str:
    value = require(value, "app_key")
    if not _APP_KEY.match(value):
        raise InvalidArgument("app_key is not one this platform issued", field="app_key",
                              reason="APP_KEY_MALFORMED")
    return value


def valid_name(value: str) -> str:
    name = require(value, "name")
    if len(name) > 100:
        raise InvalidArgument("name must be at most 100 characters", field="name",
                              reason="NAME_TOO_LONG")
    return name


def valid_scopes(values: Iterable[str], field: str = "scopes") -> tuple[str, ...]:
    scopes = tuple(sorted({value.strip() for value in values if value.strip()}))
    unknown = [scope for scope in scopes if scope not in KNOWN_SCOPES]
    if unknown:
        raise InvalidArgument(f"unknown scope(s): {', '.join(unknown)}; known: "
                              f"{', '.join(KNOWN_SCOPES)}", field=field, reason="UNKNOWN_SCOPE")
    return scopes


def valid_redirect_uri(value: str) -> str:
    uri = require(value, "redirect_uri")
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
        raise InvalidArgument("redirect_uri must be an absolute http(s) URL without a fragment",
                              field="redirect_uri", reason="REDIRECT_URI_INVALID")
    if len(uri) > 2000:
        raise InvalidArgument("redirect_uri must be at most 2000 characters",
                              field="redirect_uri", reason="REDIRECT_URI_INVALID")
    return uri


def valid_quota(value: int, default: int, maximum: int, field: str) -> int:
    if value < 0 or value > maximum:
        raise InvalidArgument(f"{field} must be between 0 (default) and {maximum}", field=field)
    return value or default


def granted_scopes(app: App, requested: Iterable[str]) -> tuple[str, ...]:
    """The scopes a shop grants: what it asked for (or everything the app may ask for), never
    more than the app was registered with."""
    scopes = valid_scopes(requested)
    if not scopes:
        return app.scopes
    beyond = [scope for scope in scopes if scope not in app.scopes]
    if beyond:
        raise InvalidArgument(f"app {app.app_key} may not ask for: {', '.join(beyond)}",
                              field="scopes", reason="SCOPE_NOT_ALLOWED_FOR_APP")
    return scopes
