"""Shopper accounts: one per marketplace account, created on first sight."""

from __future__ import annotations

from libs.db import Connection
from libs.errors import found, require
from libs.idempotency import CommitOnce
from services.identity.adapters.postgres import AccountRepository
from services.identity.domain.accounts import Account, valid_marketplace_account_id
from services.identity.usecases.context import IdentityContext, Reply


async def ensure_account(commit_once: CommitOnce[tuple[Account, bool], Reply],
                         marketplace_account_id: str) -> Reply:
    """The account of this marketplace account, created when new (True when created)."""
    return await commit_once(lambda conn: AccountRepository(conn).ensure(
        valid_marketplace_account_id(marketplace_account_id)))


async def get_account(ctx: IdentityContext, account_id: str) -> Account:
    async with ctx.db.connection() as conn:
        return await account_of(conn, account_id)


async def account_of(conn: Connection, account_id: str) -> Account:
    """The account, in the caller's transaction; NotFound when there is none."""
    return found(await AccountRepository(conn).get(require(account_id, "account_id")),
                 f"account {account_id}", reason="ACCOUNT_NOT_FOUND", account_id=account_id)
