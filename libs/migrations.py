"""SQL migrations per service, applied in order under an advisory lock.

Each service keeps its migrations in `services/<name>/migrations/NNNN_title.sql`; the shared
runtime's tables (outbox, processed events, idempotency keys) come first from
`libs/runtime_sql/`. Every applied file is recorded with a SHA-256 checksum, and a file that
changed after it was applied is refused: history is fixed, new changes go in new files.
"""

from __future__ import annotations

import hashlib
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from libs.db import connect

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_DIR = Path(__file__).resolve().parent / "runtime_sql"
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Pods of one rollout start together and wait for each other; a migration that takes longer
# than this is stuck, not slow (MIGRATION_LOCK_WAIT_SECONDS overrides it in tools.migrate).
DEFAULT_LOCK_WAIT_SECONDS = 120.0


class MigrationError(RuntimeError):
    """A migration cannot be applied; the message names the file and the problem."""


class MigrationLockTimeout(MigrationError):
    """Another migrator held the schema's lock past the bound; the message names it."""


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def _read_dir(directory: Path, prefix: str) -> list[Migration]:
    if not directory.is_dir():
        return []
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        if not _FILE_NAME.match(path.name):
            raise MigrationError(f"{path}: migration files are named NNNN_lower_snake.sql")
        migrations.append(Migration(f"{prefix}{path.stem}", path, path.read_text()))
    return migrations


def service_migrations(service: str, root: Path = ROOT) -> list[Migration]:
    return _read_dir(RUNTIME_DIR, "runtime/") + _read_dir(
        root / "services" / service / "migrations", ""
    )


def _lock_key(schema: str) -> int:
    digest = hashlib.sha256(f"brandclub.migrations.{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def migrate(conn: asyncpg.Connection, schema: str, migrations: list[Migration], *,
                  lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS) -> list[str]:
    """Apply what is missing; return the versions applied by this call.

    One transaction holds the schema's advisory lock (`pg_advisory_xact_lock`, so nothing
    outlives the transaction: safe behind PgBouncer in transaction pooling) from reading the
    history to the last migration; each migration runs in a savepoint of it. A migration that
    fails is rolled back alone: those before it stay applied and recorded. A migrator that
    finds the lock taken waits up to `lock_wait_seconds`, then reads the history the holder
    left, usually finding nothing to do; past the bound it fails naming the holder.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]*", schema):
        raise MigrationError(f"invalid schema name {schema!r}")
    done: list[str] = []
    failure: MigrationError | None = None
    try:
        async with conn.transaction():
            await _wait_for_lock(conn, schema, lock_wait_seconds)
            for migration in await _pending(conn, schema, migrations):
                failure = await _apply(conn, schema, migration)
                if failure is not None:
                    break
                done.append(migration.version)
    except asyncpg.LockNotAvailableError:
        holder = await _lock_holder(conn, schema)
        raise MigrationLockTimeout(
            f"{schema}: the migration lock is still held after {lock_wait_seconds:g} s by "
            f"{holder}; it is released when that migration commits or rolls back "
            f"(to end it: SELECT pg_terminate_backend(<pid>))"
        ) from None
    if failure is not None:
        raise failure
    return done


async def _wait_for_lock(conn: asyncpg.Connection, schema: str, seconds: float) -> None:
    """Take the schema's transaction-level advisory lock, waiting at most `seconds`
    (lock_timeout bounds only this statement: the migrations' own locks keep the default)."""
    previous = await conn.fetchval("SELECT current_setting('lock_timeout')")
    await conn.execute("SELECT set_config('lock_timeout', $1, true)",
                       f"{max(1, round(seconds * 1000))}ms")
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(schema))
    await conn.execute("SELECT set_config('lock_timeout', $1, true)", previous)


async def _pending(conn: asyncpg.Connection, schema: str,
                   migrations: list[Migration]) -> list[Migration]:
    """The migrations not applied yet; refuses an applied file whose content changed."""
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    await conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
            version text PRIMARY KEY,
            checksum text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    rows = await conn.fetch(f"SELECT version, checksum FROM {schema}.schema_migrations")
    applied = {row["version"]: row["checksum"] for row in rows}
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationError(
                f"{schema}: migration {migration.version} ({migration.path}) changed "
                "after it was applied; add a new migration instead of editing it"
            )
    return [migration for migration in migrations if migration.version not in applied]


async def _apply(conn: asyncpg.Connection, schema: str,
                 migration: Migration) -> MigrationError | None:
    """Run one migration in a savepoint and record it; the error, if it failed."""
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL search_path TO {schema}")
            await conn.execute(migration.sql)
            await conn.execute(
                f"INSERT INTO {schema}.schema_migrations (version, checksum) VALUES ($1, $2)",
                migration.version,
                migration.checksum,
            )
    except asyncpg.PostgresError as exc:
        return MigrationError(f"{schema}: migration {migration.version} failed: {exc}")
    return None


async def _lock_holder(conn: asyncpg.Connection, schema: str) -> str:
    """Who holds the schema's migration lock, in words an operator can act on."""
    key = _lock_key(schema) & 0xFFFF_FFFF_FFFF_FFFF  # pg_locks shows the bigint as two oids
    row = await conn.fetchrow(
        """SELECT a.pid, a.application_name, a.client_addr::text AS client, a.xact_start
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
              AND l.classid::bigint = $1 AND l.objid::bigint = $2""",
        key >> 32, key & 0xFFFF_FFFF,
    )
    if row is None:
        return "a session that has released it since (try again)"
    application = row["application_name"] or "no application_name"
    client = row["client"] or "a local socket"
    since = row["xact_start"].isoformat(timespec="seconds") if row["xact_start"] else "?"
    return (f"PostgreSQL backend pid {row['pid']} ({application}, from {client}, "
            f"in a transaction since {since})")


async def migrate_service(database_url: str, service: str, *,
                          lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS) -> list[str]:
    """Migrate one service's schema. The session names the migrating host (the pod), so a
    migrator left waiting can say who holds the lock; an unreachable database raises
    DatabaseUnreachable naming DATABASE_URL and the host."""
    application = f"brandclub-migrate {service} {socket.gethostname()}"[:63]
    # No statement cache: behind a transaction-pooling PgBouncer the next transaction may run
    # on another server connection, where a cached prepared statement does not exist.
    conn = await connect(database_url, server_settings={"application_name": application},
                         statement_cache_size=0)
    try:
        return await migrate(conn, service, service_migrations(service),
                             lock_wait_seconds=lock_wait_seconds)
    finally:
        await conn.close()
