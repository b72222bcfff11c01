"""asyncpg repository for the open platform's tables in the identity schema."""

from __future__ import annotations

from datetime import datetime

from libs.db import Connection, Record
from services.identity.isv.domain.apps import (
    App,
    AppStatus,
    Authorization,
    AuthorizationCode,
    IssuedToken,
)
from services.identity.isv.domain.sealing import Sealed


def _app(row: Record) -> App:
    return App(row["app_key"], row["name"], AppStatus(row["status"]), tuple(row["scopes"]),
               row["redirect_uri"], row["calls_per_minute"], row["calls_per_day"],
               row["created_at"])


def _authorization(row: Record) -> Authorization:
    return Authorization(row["authorization_id"], row["app_key"], row["app_name"],
                         row["brand_id"], row["shop_id"], tuple(row["scopes"]),
                         row["granted_by"], row["granted_at"], row["revoked_at"])


_AUTH_SELECT = ("SELECT a.*, p.name AS app_name FROM isv_authorizations a "
                "JOIN isv_apps p ON p.app_key = a.app_key ")


class IsvRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add_app(self, app: App, sealed: Sealed, request_id: str,
                      request_hash: bytes) -> bool:
        """False when another app was already created under this request id."""
        row = await self._conn.fetchrow(
            "INSERT INTO isv_apps (app_key, name, status, scopes, redirect_uri, secret_key_id, "
            "secret_nonce, secret_ciphertext, calls_per_minute, calls_per_day, created_at, "
            "request_id, request_hash) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
            "ON CONFLICT (request_id) DO NOTHING RETURNING true",
            app.app_key, app.name, app.status.value, list(app.scopes), app.redirect_uri,
            sealed.key_id, sealed.nonce, sealed.ciphertext, app.calls_per_minute,
            app.calls_per_day, app.created_at, request_id, request_hash,
        )
        return row is not None

    async def app_by_request(self, request_id: str) -> tuple[App, Sealed, bytes] | None:
        row = await self._conn.fetchrow("SELECT * FROM isv_apps WHERE request_id = $1",
                                        request_id)
        if row is None:
            return None
        return _app(row), Sealed(row["secret_key_id"], bytes(row["secret_nonce"]),
                                 bytes(row["secret_ciphertext"])), bytes(row["request_hash"])

    async def get_app(self, app_key: str) -> tuple[App, Sealed] | None:
        row = await self._conn.fetchrow("SELECT * FROM isv_apps WHERE app_key = $1", app_key)
        if row is None:
            return None
        return _app(row), Sealed(row["secret_key_id"], bytes(row["secret_nonce"]),
                                 bytes(row["secret_ciphertext"]))

    async def set_status(self, app_key: str, status: AppStatus) -> App | None:
        row = await self._conn.fetchrow(
            "UPDATE isv_apps SET status = $2, updated_at = now() WHERE app_key = $1 RETURNING *",
            app_key, status.value)
        return _app(row) if row else None

    async def live_authorization(self, app_key: str, shop_id: str) -> Authorization | None:
        row = await self._conn.fetchrow(
            _AUTH_SELECT + "WHERE a.app_key = $1 AND a.shop_id = $2 AND a.revoked_at IS NULL "
            "FOR UPDATE OF a", app_key, shop_id)
        return _authorization(row) if row else None

    async def get_authorization(self, authorization_id: str) -> Authorization | None:
        row = await self._conn.fetchrow(_AUTH_SELECT + "WHERE a.authorization_id = $1",
                                        authorization_id)
        return _authorization(row) if row else None

    async def add_authorization(self, authorization: Authorization) -> None:
        await self._conn.execute(
            "INSERT INTO isv_authorizations (authorization_id, app_key, brand_id, shop_id, "
            "scopes, granted_by, granted_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            authorization.authorization_id, authorization.app_key, authorization.brand_id,
            authorization.shop_id, list(authorization.scopes), authorization.granted_by,
            authorization.granted_at)

    async def regrant(self, authorization_id: str, scopes: tuple[str, ...], granted_by: str,
                      now: datetime) -> None:
        await self._conn.execute(
            "UPDATE isv_authorizations SET scopes = $2, granted_by = $3, granted_at = $4 "
            "WHERE authorization_id = $1", authorization_id, list(scopes), granted_by, now)

    async def revoke_authorization(self, authorization_id: str, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE isv_authorizations SET revoked_at = $2 WHERE authorization_id = $1",
            authorization_id, now)
        await self._conn.execute(
            "UPDATE isv_tokens SET revoked_at = $2 WHERE authorization_id = $1 "
            "AND revoked_at IS NULL", authorization_id, now)

    async def list_authorizations(self, brand_id: str, include_revoked: bool, limit: int,
                                  after: tuple[datetime, str] | None) -> list[Authorization]:
        rows = await self._conn.fetch(
            _AUTH_SELECT + "WHERE a.brand_id = $1 AND ($2 OR a.revoked_at IS NULL) "
            "AND ($3::timestamptz IS NULL OR (a.granted_at, a.authorization_id) < ($3, $4)) "
            "ORDER BY a.granted_at DESC, a.authorization_id DESC LIMIT $5",
            brand_id, include_revoked, after[0] if after else None,
            after[1] if after else "", limit)
        return [_authorization(row) for row in rows]

    async def add_code(self, code_hash: bytes, authorization_id: str, redirect_uri: str,
                       expires_at: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO isv_codes (code_hash, authorization_id, redirect_uri, expires_at) "
            "VALUES ($1, $2, $3, $4)", code_hash, authorization_id, redirect_uri, expires_at)

    async def take_code(self, code_hash: bytes) -> AuthorizationCode | None:
        """The code, locked; the caller marks it used."""
        row = await self._conn.fetchrow(
            "SELECT * FROM isv_codes WHERE code_hash = $1 FOR UPDATE", code_hash)
        return None if row is None else AuthorizationCode(
            bytes(row["code_hash"]), row["authorization_id"], row["expires_at"], row["used_at"])

    async def mark_code_used(self, code_hash: bytes, now: datetime) -> None:
        await self._conn.execute("UPDATE isv_codes SET used_at = $2 WHERE code_hash = $1",
                                 code_hash, now)

    async def add_token(self, token_hash: bytes, kind: str, authorization_id: str,
                        pair_id: str, expires_at: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO isv_tokens (token_hash, kind, authorization_id, pair_id, expires_at) "
            "VALUES ($1, $2, $3, $4, $5)", token_hash, kind, authorization_id, pair_id,
            expires_at)

    async def get_token(self, token_hash: bytes, kind: str, *, lock: bool = False
                        ) -> IssuedToken | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM isv_tokens WHERE token_hash = $1 AND kind = $2"
            + (" FOR UPDATE" if lock else ""), token_hash, kind)
        return None if row is None else IssuedToken(
            row["authorization_id"], row["pair_id"], row["expires_at"], row["revoked_at"])

    async def revoke_pair(self, pair_id: str, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE isv_tokens SET revoked_at = $2 WHERE pair_id = $1 AND revoked_at IS NULL",
            pair_id, now)
