"""asyncpg repository for the identity schema."""

from __future__ import annotations

from datetime import datetime

from libs.db import Connection, Record
from services.identity.domain.accounts import Account, new_account_id
from services.identity.domain.imports import ImportStatus, PhoneMatchImport, RowError
from services.identity.domain.links import (
    IdentityKind,
    IdentityRef,
    LinkAction,
    LinkedIdentity,
    LinkHistoryEntry,
)
from services.identity.domain.merchants import MerchantUser
from services.identity.domain.phones import Sealed


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


class LinkRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def find(self, ref: IdentityRef) -> LinkedIdentity | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM linked_identities WHERE kind = $1 AND scope = $2 AND external_id = $3",
            ref.kind.value, ref.scope, ref.external_id)
        return _linked(row) if row else None

    async def find_for_account(self, account_id: str, kind: IdentityKind,
                               scope: str) -> LinkedIdentity | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM linked_identities WHERE account_id = $1 AND kind = $2 AND scope = $3",
            account_id, kind.value, scope)
        return _linked(row) if row else None

    async def lock_ref(self, ref: IdentityRef) -> None:
        """Serialise links of one external identity (and of one account's slot) to commit."""
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"identity:{ref.kind.value}:{ref.scope}:{ref.external_id}")

    async def lock_account_slot(self, account_id: str, kind: IdentityKind, scope: str) -> None:
        await self._conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"identity-slot:{account_id}:{kind.value}:{scope}")

    async def add(self, ref: IdentityRef, account_id: str, now: datetime) -> LinkedIdentity:
        await self._conn.execute(
            "INSERT INTO linked_identities (kind, scope, external_id, account_id, linked_at) "
            "VALUES ($1, $2, $3, $4, $5)", ref.kind.value, ref.scope, ref.external_id,
            account_id, now)
        await self._history(ref, account_id, LinkAction.LINKED, "", now)
        return LinkedIdentity(ref, account_id, now)

    async def remove(self, ref: IdentityRef, account_id: str, reason: str,
                     now: datetime) -> bool:
        removed = await self._conn.fetchval(
            "DELETE FROM linked_identities WHERE kind = $1 AND scope = $2 AND external_id = $3 "
            "AND account_id = $4 RETURNING true",
            ref.kind.value, ref.scope, ref.external_id, account_id)
        if removed:
            await self._history(ref, account_id, LinkAction.UNLINKED, reason, now)
        return bool(removed)

    async def _history(self, ref: IdentityRef, account_id: str, action: LinkAction,
                       reason: str, now: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO identity_link_history (account_id, kind, scope, external_id, action, "
            "reason, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            account_id, ref.kind.value, ref.scope, ref.external_id, action.value, reason, now)

    async def for_account(self, account_id: str, *, kind: IdentityKind | None, scope: str | None,
                          after: tuple[datetime, str, str] | None,
                          limit: int) -> list[LinkedIdentity]:
        """Oldest link first, keyset-paged on (linked_at, kind, scope) after `after`."""
        after_at, after_kind, after_scope = after or (None, "", "")
        rows = await self._conn.fetch(
            "SELECT * FROM linked_identities WHERE account_id = $1 "
            "AND ($2::text IS NULL OR kind = $2) AND ($3::text IS NULL OR scope = $3) "
            "AND ($4::timestamptz IS NULL OR (linked_at, kind, scope) > ($4, $5, $6)) "
            "ORDER BY linked_at, kind, scope LIMIT $7",
            account_id, kind.value if kind else None, scope, after_at, after_kind, after_scope,
            limit)
        return [_linked(row) for row in rows]

    async def history(self, account_id: str, before_id: int | None,
                      limit: int) -> list[LinkHistoryEntry]:
        rows = await self._conn.fetch(
            "SELECT * FROM identity_link_history WHERE account_id = $1 "
            "AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
            account_id, before_id, limit)
        return [LinkHistoryEntry(row["id"], IdentityRef(IdentityKind(row["kind"]), row["scope"],
                                                        row["external_id"]),
                                 LinkAction(row["action"]), row["reason"], row["occurred_at"])
                for row in rows]


def _linked(row: Record) -> LinkedIdentity:
    return LinkedIdentity(IdentityRef(IdentityKind(row["kind"]), row["scope"],
                                      row["external_id"]), row["account_id"], row["linked_at"])


class PhoneRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def lock_account(self, account_id: str) -> None:
        """Serialise writers of one account's number until the transaction ends (the first
        number stored has no row to lock yet)."""
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                                 f"phone:{account_id}")

    async def get(self, account_id: str) -> tuple[Sealed, bytes] | None:
        row = await self._conn.fetchrow(
            "SELECT key_version, nonce, ciphertext, fingerprint FROM phone_vault "
            "WHERE account_id = $1", account_id)
        if row is None:
            return None
        return (Sealed(row["key_version"], bytes(row["nonce"]), bytes(row["ciphertext"])),
                bytes(row["fingerprint"]))

    async def put(self, account_id: str, sealed: Sealed, fingerprint: bytes,
                  now: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO phone_vault (account_id, key_version, nonce, ciphertext, fingerprint, "
            "updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id) DO UPDATE SET "
            "key_version = EXCLUDED.key_version, nonce = EXCLUDED.nonce, "
            "ciphertext = EXCLUDED.ciphertext, fingerprint = EXCLUDED.fingerprint, "
            "updated_at = EXCLUDED.updated_at",
            account_id, sealed.key_version, sealed.nonce, sealed.ciphertext, fingerprint, now)

    async def stale(self, current_version: str, limit: int) -> list[str]:
        rows = await self._conn.fetch(
            "SELECT account_id FROM phone_vault WHERE key_version <> $1 "
            "ORDER BY account_id LIMIT $2 FOR UPDATE SKIP LOCKED", current_version, limit)
        return [row["account_id"] for row in rows]

    async def audit_reveal(self, account_id: str, brand_id: str, purpose: str,
                           message_id: str, now: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO phone_reveals (account_id, brand_id, purpose, message_id, revealed_at) "
            "VALUES ($1, $2, $3, $4, $5)", account_id, brand_id, purpose, message_id, now)

    async def crm_member_for(self, brand_id: str, phone_hash: bytes) -> str | None:
        value = await self._conn.fetchval(
            "SELECT crm_member_id FROM crm_phone_index WHERE brand_id = $1 AND phone_hash = $2",
            brand_id, phone_hash)
        return str(value) if value is not None else None


def _import(row: Record) -> PhoneMatchImport:
    return PhoneMatchImport(row["import_id"], row["brand_id"], ImportStatus(row["status"]),
                            row["expected_rows"], row["lines_received"], row["accepted_rows"],
                            row["rejected_rows"], row["chunks_received"], row["created_at"],
                            row["completed_at"])


class ImportRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add(self, imp: PhoneMatchImport) -> None:
        await self._conn.execute(
            "INSERT INTO phone_match_imports (import_id, brand_id, status, expected_rows, "
            "created_at) VALUES ($1, $2, $3, $4, $5)",
            imp.import_id, imp.brand_id, imp.status.value, imp.expected_rows, imp.created_at)

    async def get(self, brand_id: str, import_id: str, *,
                  for_update: bool = False) -> PhoneMatchImport | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM phone_match_imports WHERE import_id = $1 AND brand_id = $2"
            + (" FOR UPDATE" if for_update else ""), import_id, brand_id)
        return _import(row) if row else None

    async def apply_rows(self, brand_id: str, import_id: str,
                         rows: list[tuple[int, bytes, str]]) -> list[RowError]:
        """Upsert the rows through a COPY-filled staging table; a phone hash that an earlier
        chunk of the same import already gave is refused by line."""
        if not rows:
            return []
        await self._conn.execute(
            "CREATE TEMP TABLE phone_import_stage (line bigint, phone_hash bytea, "
            "crm_member_id text) ON COMMIT DROP")
        await self._conn.copy_records_to_table(
            "phone_import_stage", records=rows, columns=["line", "phone_hash", "crm_member_id"],
            schema_name="pg_temp")
        # One pass: upsert in key order (index locality); a hash that this same import
        # already holds is not updated, and its line comes back as a duplicate.
        duplicates = await self._conn.fetch(
            "WITH applied AS ("
            " INSERT INTO crm_phone_index (brand_id, phone_hash, crm_member_id, import_id)"
            " SELECT $1, phone_hash, crm_member_id, $2 FROM phone_import_stage"
            " ORDER BY phone_hash"
            " ON CONFLICT (brand_id, phone_hash) DO UPDATE SET"
            " crm_member_id = EXCLUDED.crm_member_id, import_id = EXCLUDED.import_id"
            " WHERE crm_phone_index.import_id <> EXCLUDED.import_id"
            " RETURNING phone_hash)"
            " SELECT s.line FROM phone_import_stage s"
            " WHERE NOT EXISTS (SELECT 1 FROM applied a WHERE a.phone_hash = s.phone_hash)"
            " ORDER BY s.line", brand_id, import_id)
        await self._conn.execute("DROP TABLE phone_import_stage")
        return [RowError(row["line"], "DUPLICATE_PHONE",
                         "the same phone hash is on an earlier line of this import")
                for row in duplicates]

    async def add_errors(self, import_id: str, errors: list[RowError]) -> None:
        if errors:
            await self._conn.copy_records_to_table(
                "phone_match_import_errors",
                records=[(import_id, e.line, e.reason, e.message) for e in errors],
                columns=["import_id", "line", "reason", "message"],
                schema_name=await self._schema())

    async def _schema(self) -> str:
        return str(await self._conn.fetchval("SELECT current_schema()"))

    async def advance(self, import_id: str, lines: int, accepted: int,
                      rejected: int) -> PhoneMatchImport:
        row = await self._conn.fetchrow(
            "UPDATE phone_match_imports SET lines_received = lines_received + $2, "
            "accepted_rows = accepted_rows + $3, rejected_rows = rejected_rows + $4, "
            "chunks_received = chunks_received + 1 WHERE import_id = $1 RETURNING *",
            import_id, lines, accepted, rejected)
        assert row is not None
        return _import(row)

    async def complete(self, import_id: str, now: datetime) -> PhoneMatchImport:
        row = await self._conn.fetchrow(
            "UPDATE phone_match_imports SET status = 'completed', completed_at = $2 "
            "WHERE import_id = $1 RETURNING *", import_id, now)
        assert row is not None
        return _import(row)

    async def errors(self, import_id: str, after_line: int, limit: int) -> list[RowError]:
        rows = await self._conn.fetch(
            "SELECT line, reason, message FROM phone_match_import_errors "
            "WHERE import_id = $1 AND line > $2 ORDER BY line LIMIT $3",
            import_id, after_line, limit)
        return [RowError(row["line"], row["reason"], row["message"]) for row in rows]


def _merchant(row: Record) -> MerchantUser:
    return MerchantUser(row["merchant_user_id"], row["brand_id"], row["login_name"],
                        row["display_name"], row["disabled_at"] is not None, row["created_at"])


class MerchantRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add(self, user: MerchantUser, password_hash: str) -> bool:
        added = await self._conn.fetchval(
            "INSERT INTO merchant_users (merchant_user_id, brand_id, login_name, display_name, "
            "password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (login_name) DO NOTHING RETURNING true",
            user.merchant_user_id, user.brand_id, user.login_name, user.display_name,
            password_hash, user.created_at)
        return bool(added)

    async def get(self, merchant_user_id: str) -> MerchantUser | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM merchant_users WHERE merchant_user_id = $1", merchant_user_id)
        return _merchant(row) if row else None

    async def by_login(self, login_name: str) -> tuple[MerchantUser, str] | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM merchant_users WHERE login_name = $1", login_name)
        return (_merchant(row), row["password_hash"]) if row else None

    async def list(self, brand_id: str, after_id: str, limit: int) -> list[MerchantUser]:
        rows = await self._conn.fetch(
            "SELECT * FROM merchant_users WHERE brand_id = $1 AND merchant_user_id > $2 "
            "ORDER BY merchant_user_id LIMIT $3", brand_id, after_id, limit)
        return [_merchant(row) for row in rows]

    async def disable(self, merchant_user_id: str, now: datetime) -> MerchantUser:
        row = await self._conn.fetchrow(
            "UPDATE merchant_users SET disabled_at = coalesce(disabled_at, $2) "
            "WHERE merchant_user_id = $1 RETURNING *", merchant_user_id, now)
        assert row is not None
        return _merchant(row)
