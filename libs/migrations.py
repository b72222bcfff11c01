"""SQL migrations per service, applied in order under an advisory lock.

Each service keeps its migrations in `services/<name>/migrations/NNNN_title.sql`; the shared
runtime's tables (outbox, processed events, idempotency keys) come first from
`libs/runtime_sql/`. Every applied file is recorded with a SHA-256 checksum, and a file that
changed after it was applied is refused: history is fixed, new changes go in new files.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_DIR = Path(__file__).resolve().parent / "runtime_sql"
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    """A migration cannot be applied; the message names the file and the problem."""


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


async def migrate(conn: asyncpg.Connection, schema: str, migrations: list[Migration]) -> list[str]:
    """Apply what is missing; return the versions applied by this call."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", schema):
        raise MigrationError(f"invalid schema name {schema!r}")
    await conn.execute("SELECT pg_advisory_lock($1)", _lock_key(schema))
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                version text PRIMARY KEY,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = await conn.fetch(f"SELECT version, checksum FROM {schema}.schema_migrations")
        applied = {row["version"]: row["checksum"] for row in rows}
        done: list[str] = []
        for migration in migrations:
            recorded = applied.get(migration.version)
            if recorded is not None:
                if recorded != migration.checksum:
                    raise MigrationError(
                        f"{schema}: migration {migration.version} ({migration.path}) changed "
                        "after it was applied; add a new migration instead of editing it"
                    )
                continue
            async with conn.transaction():
                await conn.execute(f"SET LOCAL search_path TO {schema}")
                try:
                    await conn.execute(migration.sql)
                except asyncpg.PostgresError as exc:
                    raise MigrationError(
                        f"{schema}: migration {migration.version} failed: {exc}"
                    ) from exc
                await conn.execute(
                    f"INSERT INTO {schema}.schema_migrations (version, checksum) VALUES ($1, $2)",
                    migration.version,
                    migration.checksum,
                )
            done.append(migration.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _lock_key(schema))


async def migrate_service(database_url: str, service: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return await migrate(conn, service, service_migrations(service))
    finally:
        await conn.close()
