"""Session tokens: issuing shopper and merchant tokens, merchant sign-in, and verifying a
token (a merchant token also needs its user still enabled and of its brand)."""

from __future__ import annotations

from datetime import timedelta

from libs.errors import FailedPrecondition, InvalidArgument, Unauthenticated, found, require
from services.identity.adapters.postgres import MerchantRepository
from services.identity.domain.merchants import MerchantUser, password_matches
from services.identity.domain.tokens import Claims, Kind
from services.identity.usecases.accounts import account_of
from services.identity.usecases.context import IdentityContext

DEFAULT_SHOPPER_TTL = timedelta(days=7)
MAX_TTL = timedelta(days=30)
DEFAULT_MERCHANT_TTL = timedelta(hours=12)
MAX_MERCHANT_TTL = timedelta(days=7)


def _ttl(ttl_seconds: int, default: timedelta, maximum: timedelta) -> timedelta:
    """The requested lifetime (0: the default), refused beyond `maximum`."""
    if ttl_seconds < 0 or timedelta(seconds=ttl_seconds) > maximum:
        raise InvalidArgument(
            f"ttl_seconds must be between 0 and {int(maximum.total_seconds())}",
            field="ttl_seconds")
    return timedelta(seconds=ttl_seconds) if ttl_seconds else default


async def issue_shopper_token(ctx: IdentityContext, account_id: str,
                              ttl_seconds: int) -> tuple[str, Claims]:
    ttl = _ttl(ttl_seconds, DEFAULT_SHOPPER_TTL, MAX_TTL)
    async with ctx.db.connection() as conn:
        account = await account_of(conn, account_id)
    return ctx.codec.issue(Kind.SHOPPER, account.account_id, now=ctx.clock(), ttl=ttl)


async def verify_token(ctx: IdentityContext, token: str) -> Claims:
    """The claims of a valid token. Shopper tokens verify without the database (the hot path
    of every storefront call); a merchant token also needs its user enabled and of its brand."""
    claims = ctx.codec.verify(require(token, "token"), now=ctx.clock())
    if claims.kind is Kind.MERCHANT:
        async with ctx.db.connection() as conn:
            user = await MerchantRepository(conn).get(claims.subject)
        if user is None or user.disabled or user.brand_id != claims.brand_id:
            raise Unauthenticated("the merchant user of this token is disabled or gone",
                                  reason="MERCHANT_USER_DISABLED")
    return claims


async def issue_merchant_token(ctx: IdentityContext, merchant_user_id: str,
                               ttl_seconds: int) -> tuple[str, Claims]:
    ttl = _ttl(ttl_seconds, DEFAULT_MERCHANT_TTL, MAX_MERCHANT_TTL)
    async with ctx.db.connection() as conn:
        stored = await MerchantRepository(conn).get(require(merchant_user_id,
                                                            "merchant_user_id"))
    user = found(stored, f"merchant user {merchant_user_id}", reason="MERCHANT_USER_NOT_FOUND",
                 merchant_user_id=merchant_user_id)
    if user.disabled:
        raise FailedPrecondition("the merchant user is disabled",
                                 reason="MERCHANT_USER_DISABLED")
    return ctx.codec.issue(Kind.MERCHANT, user.merchant_user_id, now=ctx.clock(), ttl=ttl,
                           brand_id=user.brand_id)


async def sign_in_merchant(ctx: IdentityContext, login_name: str,
                           password: str) -> tuple[str, Claims, MerchantUser]:
    """One answer for unknown login, wrong password and disabled user: no account probing."""
    async with ctx.db.connection() as conn:
        credentials = await MerchantRepository(conn).by_login(
            require(login_name, "login_name").lower())
    require(password, "password")
    if (credentials is None or credentials[0].disabled
            or not password_matches(password, credentials[1])):
        raise Unauthenticated("login name or password is wrong",
                              reason="MERCHANT_CREDENTIALS_INVALID")
    user = credentials[0]
    token, claims = ctx.codec.issue(Kind.MERCHANT, user.merchant_user_id, now=ctx.clock(),
                                    ttl=DEFAULT_MERCHANT_TTL, brand_id=user.brand_id)
    return token, claims, user
