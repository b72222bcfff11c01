"""asyncpg repository for the identity schema."""

from __future__ import annotations

from libs.db import Connection, Record
from services.identity.domain.accounts import Account, new_account_id


def _account(row: Record) -> Account:
    return Account(row["account_id"], row["marketplace_account_id"], row["created_at"])


class AccountRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def ensure(self, marketplace_account_id: str) -> tuple[Account, bool]:
        """Find or create; concurrent first sightings create exactly one account."""
        row = await self._conn.fetchrow(
            "INSERT INTO accounts (account_id, marketplace_account_id) VALUES ($1, $2) "
            "ON CONFLICT (marketplace_account_id) DO NOTHING RETURNING *",
            new_account_id(), marketplace_account_id,
        )
        if row is not None:
            return _account(row), True
        row = await self._conn.fetchrow(
            "SELECT * FROM accounts WHERE marketplace_account_id = $1", marketplace_account_id)
        assert row is not None
        return _account(row), False

    async def get(self, account_id: str) -> Account | None:
        row = await self._conn.fetchrow("SELECT * FROM accounts WHERE account_id = $1",
                                        account_id)
        return _account(row) if row else None
