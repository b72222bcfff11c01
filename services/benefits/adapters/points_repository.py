"""Points accounts, their ledger entries, lots and pending grants. Every query filters by brand."""

from __future__ import annotations

from datetime import datetime

from libs.db import Connection, Record
from services.benefits.adapters.rows import entry_from_row
from services.benefits.domain.points import Entry, Lot, PendingGrant, PointsBalance


class PointsRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def balance(self, brand_id: str, account_id: str) -> PointsBalance:
        row = await self._conn.fetchrow(
            "SELECT available, pending, shortfall, version FROM points_accounts "
            "WHERE brand_id = $1 AND account_id = $2",
            brand_id, account_id,
        )
        if row is None:
            return PointsBalance(brand_id, account_id)
        return PointsBalance(brand_id, account_id, row["available"], row["pending"],
                             row["shortfall"], row["version"])

    async def lock_account(self, brand_id: str, account_id: str) -> PointsBalance:
        """Create the account if needed and hold its row lock until commit."""
        # One round trip: the no-op update on conflict takes the row lock and returns the row.
        row = await self._conn.fetchrow(
            "INSERT INTO points_accounts (brand_id, account_id) VALUES ($1, $2) "
            "ON CONFLICT (brand_id, account_id) DO UPDATE SET brand_id = EXCLUDED.brand_id "
            "RETURNING available, pending, shortfall, version", brand_id, account_id)
        assert row is not None
        return PointsBalance(brand_id, account_id, row["available"], row["pending"],
                             row["shortfall"], row["version"])

    async def apply(self, entry: Entry) -> PointsBalance:
        """Insert an entry and move the account's balances by exactly its deltas."""
        # One round trip: the entry and the balance move together.
        row = await self._conn.fetchrow(
            "WITH entry AS (INSERT INTO points_entries (brand_id, entry_id, account_id, kind, "
            "amount, available_delta, pending_delta, shortfall, reason_code, source, "
            "request_id, reverses_entry_id, available_at, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)) "
            "UPDATE points_accounts SET available = available + $6, pending = pending + $7, "
            "shortfall = shortfall + $8, version = version + 1, updated_at = $14 "
            "WHERE brand_id = $1 AND account_id = $3 "
            "RETURNING available, pending, shortfall, version",
            entry.brand_id, entry.entry_id, entry.account_id, entry.kind.value, entry.amount,
            entry.available_delta, entry.pending_delta, entry.shortfall, entry.reason_code,
            entry.source.value, entry.request_id, entry.reverses_entry_id, entry.available_at,
            entry.created_at)
        assert row is not None
        return PointsBalance(entry.brand_id, entry.account_id, row["available"],
                             row["pending"], row["shortfall"], row["version"])

    async def entry(self, brand_id: str, entry_id: str) -> Entry | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM points_entries WHERE brand_id = $1 AND entry_id = $2",
            brand_id, entry_id)
        return entry_from_row(row) if row else None

    async def is_reversed(self, brand_id: str, entry_id: str) -> bool:
        return bool(await self._conn.fetchval(
            "SELECT true FROM points_entries WHERE brand_id = $1 AND reverses_entry_id = $2",
            brand_id, entry_id))

    async def history(self, brand_id: str, account_id: str, before_seq: int | None,
                      limit: int) -> list[Entry]:
        rows = await self._conn.fetch(
            "SELECT * FROM points_entries WHERE brand_id = $1 AND account_id = $2 "
            "AND ($3::bigint IS NULL OR seq < $3) ORDER BY seq DESC LIMIT $4",
            brand_id, account_id, before_seq, limit)
        return [entry_from_row(row) for row in rows]

    async def add_lot(self, brand_id: str, lot_id: str, account_id: str, entry_id: str,
                      amount: int, remaining: int, expires_at: datetime | None,
                      now: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO points_lots (brand_id, lot_id, account_id, entry_id, amount, "
            "remaining, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            brand_id, lot_id, account_id, entry_id, amount, remaining, expires_at, now)

    async def open_lots(self, brand_id: str, account_id: str) -> list[Lot]:
        rows = await self._conn.fetch(
            "SELECT lot_id, remaining, expires_at, created_at FROM points_lots "
            "WHERE brand_id = $1 AND account_id = $2 AND remaining > 0 FOR UPDATE",
            brand_id, account_id)
        return [Lot(r["lot_id"], r["remaining"], r["expires_at"], r["created_at"]) for r in rows]

    async def lot_of_entry(self, brand_id: str, entry_id: str) -> str | None:
        return await self._conn.fetchval(
            "SELECT lot_id FROM points_lots WHERE brand_id = $1 AND entry_id = $2",
            brand_id, entry_id)

    async def move_lots(self, brand_id: str, moves: list[tuple[str, int]]) -> None:
        """Change lots' remaining by the given signed amounts."""
        if moves:
            await self._conn.executemany(
                "UPDATE points_lots SET remaining = remaining + $3 "
                "WHERE brand_id = $1 AND lot_id = $2",
                [(brand_id, lot_id, amount) for lot_id, amount in moves])

    async def record_moves(self, brand_id: str, entry_id: str,
                           moves: list[tuple[str, int]]) -> None:
        if moves:
            await self._conn.executemany(
                "INSERT INTO points_lot_moves (brand_id, entry_id, lot_id, amount) "
                "VALUES ($1, $2, $3, $4)",
                [(brand_id, entry_id, lot_id, amount) for lot_id, amount in moves])

    async def moves_of(self, brand_id: str, entry_id: str) -> list[tuple[str, int]]:
        rows = await self._conn.fetch(
            "SELECT lot_id, amount FROM points_lot_moves WHERE brand_id = $1 AND entry_id = $2",
            brand_id, entry_id)
        return [(r["lot_id"], r["amount"]) for r in rows]

    async def due_lots(self, brand_id: str, account_id: str, now: datetime) -> list[Lot]:
        rows = await self._conn.fetch(
            "SELECT lot_id, remaining, expires_at, created_at FROM points_lots "
            "WHERE brand_id = $1 AND account_id = $2 AND remaining > 0 "
            "AND expires_at IS NOT NULL AND expires_at <= $3 ORDER BY expires_at FOR UPDATE",
            brand_id, account_id, now)
        return [Lot(r["lot_id"], r["remaining"], r["expires_at"], r["created_at"]) for r in rows]

    async def accounts_with_due_lots(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        rows = await self._conn.fetch(
            "SELECT DISTINCT brand_id, account_id FROM points_lots "
            "WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= $1 LIMIT $2",
            now, limit)
        return [(r["brand_id"], r["account_id"]) for r in rows]

    async def expiring(self, brand_id: str, account_id: str, *,
                       after: datetime | None = None, limit: int | None = None
                       ) -> list[tuple[datetime | None, int]]:
        """The member's available points by expiry time, soonest first and never-expiring
        last; only times after `after` (which keeps the never-expiring), at most `limit`."""
        rows = await self._conn.fetch(
            "SELECT expires_at, sum(remaining)::bigint AS points FROM points_lots "
            "WHERE brand_id = $1 AND account_id = $2 AND remaining > 0 "
            "AND ($3::timestamptz IS NULL OR expires_at > $3 OR expires_at IS NULL) "
            "GROUP BY expires_at ORDER BY expires_at NULLS LAST LIMIT $4",
            brand_id, account_id, after, limit)
        return [(r["expires_at"], r["points"]) for r in rows]

    async def expiring_soon(self, brand_id: str, after: datetime, until: datetime,
                            after_account: str, limit: int
                            ) -> list[tuple[str, int, datetime]]:
        """Accounts of the brand with available points expiring in (after, until], by account
        id after `after_account`: (account, points, earliest expiry). Walks the covering index
        points_lots_expiring in account order, so each page reads only the lots it skips."""
        rows = await self._conn.fetch(
            "SELECT account_id, sum(remaining)::bigint AS points, min(expires_at) AS earliest "
            "FROM points_lots WHERE brand_id = $1 AND remaining > 0 "
            "AND expires_at IS NOT NULL AND expires_at > $2 AND expires_at <= $3 "
            "AND account_id > $4 GROUP BY account_id ORDER BY account_id LIMIT $5",
            brand_id, after, until, after_account, limit)
        return [(r["account_id"], r["points"], r["earliest"]) for r in rows]

    async def add_pending(self, brand_id: str, entry_id: str, account_id: str, amount: int,
                          release_at: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO points_pending (brand_id, entry_id, account_id, amount, release_at, "
            "state) VALUES ($1, $2, $3, $4, $5, 'pending')",
            brand_id, entry_id, account_id, amount, release_at)

    async def pending_account(self, brand_id: str, entry_id: str) -> str | None:
        return await self._conn.fetchval(
            "SELECT account_id FROM points_pending WHERE brand_id = $1 AND entry_id = $2",
            brand_id, entry_id)

    async def pending(self, brand_id: str, entry_id: str) -> PendingGrant | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM points_pending WHERE brand_id = $1 AND entry_id = $2 FOR UPDATE",
            brand_id, entry_id)
        if row is None:
            return None
        return PendingGrant(row["entry_id"], row["account_id"], row["amount"],
                            row["release_at"], row["state"], row["released_amount"])

    async def update_pending(self, brand_id: str, entry_id: str, *, amount: int, state: str,
                             released_amount: int = 0,
                             released_entry_id: str | None = None) -> None:
        await self._conn.execute(
            "UPDATE points_pending SET amount = $3, state = $4, "
            "released_amount = released_amount + $5, "
            "released_entry_id = coalesce($6, released_entry_id) "
            "WHERE brand_id = $1 AND entry_id = $2",
            brand_id, entry_id, amount, state, released_amount, released_entry_id)

    async def due_pending(self, now: datetime, limit: int) -> list[tuple[str, str, str]]:
        rows = await self._conn.fetch(
            "SELECT brand_id, account_id, entry_id FROM points_pending "
            "WHERE state = 'pending' AND release_at <= $1 ORDER BY release_at LIMIT $2",
            now, limit)
        return [(r["brand_id"], r["account_id"], r["entry_id"]) for r in rows]

    async def check(self, brand_id: str, account_id: str | None) -> list[Record]:
        """Per account: stored balances beside the sums of entries, lots and pending grants."""
        return await self._conn.fetch(
            """
            SELECT a.account_id, a.available, a.pending, a.shortfall,
                   coalesce(e.available, 0) AS e_available,
                   coalesce(e.pending, 0) AS e_pending,
                   coalesce(e.shortfall, 0) AS e_shortfall,
                   coalesce(l.remaining, 0) AS lots,
                   coalesce(p.pending, 0) AS p_pending
            FROM points_accounts a
            LEFT JOIN (SELECT account_id, sum(available_delta)::bigint AS available,
                              sum(pending_delta)::bigint AS pending,
                              sum(shortfall)::bigint AS shortfall
                       FROM points_entries WHERE brand_id = $1 GROUP BY account_id) e
                   ON e.account_id = a.account_id
            LEFT JOIN (SELECT account_id, sum(remaining)::bigint AS remaining
                       FROM points_lots WHERE brand_id = $1 GROUP BY account_id) l
                   ON l.account_id = a.account_id
            LEFT JOIN (SELECT account_id, sum(amount)::bigint AS pending
                       FROM points_pending WHERE brand_id = $1 AND state = 'pending'
                       GROUP BY account_id) p
                   ON p.account_id = a.account_id
            WHERE a.brand_id = $1 AND ($2::text IS NULL OR a.account_id = $2)
            """,
            brand_id, account_id)
