"""Shopper accounts: one per marketplace account, created on first sight."""

from __future__ import annotations

from libs.db import Connection
from libs.errors import found, require
from services.identity.adapters.postgres import AccountRepository
from services.identity.domain.accounts import Account, valid_marketplace_account_id


async def ensure_account(conn: Connection, marketplace_account_id: str) -> tuple[Account, bool]:
    """The account of this marketplace account, created when new (True when created)."""
    return await AccountRepository(conn).ensure(
        valid_marketplace_account_id(marketplace_account_id))


async def get_account(conn: Connection, account_id: str) -> Account:
    return found(await AccountRepository(conn).get(require(account_id, "account_id")),
                 f"account {account_id}", reason="ACCOUNT_NOT_FOUND", account_id=account_id)
