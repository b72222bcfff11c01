"""Identity use cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from libs.db import Connection
from libs.errors import InvalidArgument, NotFound, require
from services.identity.adapters.postgres import AccountRepository
from services.identity.domain.accounts import Account, valid_marketplace_account_id
from services.identity.domain.tokens import Claims, Kind, TokenCodec

DEFAULT_SHOPPER_TTL = timedelta(days=7)
MAX_TTL = timedelta(days=30)


async def ensure_account(conn: Connection, marketplace_account_id: str) -> tuple[Account, bool]:
    return await AccountRepository(conn).ensure(
        valid_marketplace_account_id(marketplace_account_id))


async def get_account(conn: Connection, account_id: str) -> Account:
    account = await AccountRepository(conn).get(require(account_id, "account_id"))
    if account is None:
        raise NotFound(f"account {account_id} does not exist", reason="ACCOUNT_NOT_FOUND",
                       metadata={"account_id": account_id})
    return account


async def issue_shopper_token(conn: Connection, codec: TokenCodec, account_id: str,
                              ttl_seconds: int) -> tuple[str, Claims]:
    if ttl_seconds < 0 or timedelta(seconds=ttl_seconds) > MAX_TTL:
        raise InvalidArgument(f"ttl_seconds must be between 0 and {int(MAX_TTL.total_seconds())}",
                              field="ttl_seconds")
    account = await get_account(conn, account_id)
    ttl = timedelta(seconds=ttl_seconds) if ttl_seconds else DEFAULT_SHOPPER_TTL
    return codec.issue(Kind.SHOPPER, account.account_id, now=datetime.now(UTC), ttl=ttl)


def verify_token(codec: TokenCodec, token: str) -> Claims:
    return codec.verify(require(token, "token"), now=datetime.now(UTC))
