"""libs.migrations against a real PostgreSQL: ordered, recorded, immutable, and serialised."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from libs.migrations import Migration, MigrationError, _read_dir, migrate, service_migrations

FIRST = "CREATE TABLE ledger (id serial PRIMARY KEY, note text NOT NULL);\n"
# Depends on the first file, so applying out of order fails.
SECOND = "INSERT INTO ledger (note) VALUES ('second');\n"
THIRD = "ALTER TABLE ledger ADD COLUMN amount integer NOT NULL DEFAULT 0;\n"


def write(directory: Path, name: str, sql: str) -> None:
    (directory / name).write_text(sql)


def fresh_schema() -> str:
    return f"mig_{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(db_url)
    yield connection
    await connection.close()


@pytest.fixture
def migration_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir()
    # Written out of order on purpose: the file name decides the order, not creation time.
    write(directory, "0002_seed_ledger.sql", SECOND)
    write(directory, "0001_create_ledger.sql", FIRST)
    return directory


async def recorded(conn: asyncpg.Connection, schema: str) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        f"SELECT version, checksum FROM {schema}.schema_migrations ORDER BY applied_at, version")
    return [(row["version"], row["checksum"]) for row in rows]


async def test_applies_in_order_and_records_checksums(
        conn: asyncpg.Connection, migration_dir: Path) -> None:
    """Pending files are applied in version order and each is recorded with its SHA-256."""
    schema = fresh_schema()
    migrations = _read_dir(migration_dir, "")
    applied = await migrate(conn, schema, migrations)
    assert applied == ["0001_create_ledger", "0002_seed_ledger"]
    assert await recorded(conn, schema) == [
        ("0001_create_ledger", hashlib.sha256(FIRST.encode()).hexdigest()),
        ("0002_seed_ledger", hashlib.sha256(SECOND.encode()).hexdigest()),
    ]
    # The migration ran inside the schema, not in public.
    assert await conn.fetchval(f"SELECT note FROM {schema}.ledger") == "second"
    assert await conn.fetchval("SELECT to_regclass('public.ledger')") is None


async def test_rerun_applies_nothing_and_only_new_files_later(
        conn: asyncpg.Connection, migration_dir: Path) -> None:
    """A second run applies nothing; a later run applies only the file added since."""
    schema = fresh_schema()
    await migrate(conn, schema, _read_dir(migration_dir, ""))
    assert await migrate(conn, schema, _read_dir(migration_dir, "")) == []
    assert await conn.fetchval(f"SELECT count(*) FROM {schema}.ledger") == 1

    write(migration_dir, "0003_add_amount.sql", THIRD)
    assert await migrate(conn, schema, _read_dir(migration_dir, "")) == ["0003_add_amount"]
    assert await conn.fetchval(f"SELECT count(*) FROM {schema}.ledger") == 1
    assert len(await recorded(conn, schema)) == 3


async def test_changed_applied_migration_is_refused(
        conn: asyncpg.Connection, migration_dir: Path) -> None:
    """Editing an applied file is refused with a MigrationError naming its version."""
    schema = fresh_schema()
    await migrate(conn, schema, _read_dir(migration_dir, ""))
    write(migration_dir, "0001_create_ledger.sql", FIRST + "-- an innocent-looking edit\n")
    write(migration_dir, "0003_add_amount.sql", THIRD)
    with pytest.raises(MigrationError, match="0001_create_ledger"):
        await migrate(conn, schema, _read_dir(migration_dir, ""))
    # Nothing after the refusal was applied, and the history still holds the original checksum.
    versions = [version for version, _ in await recorded(conn, schema)]
    assert versions == ["0001_create_ledger", "0002_seed_ledger"]
    assert (await recorded(conn, schema))[0][1] == hashlib.sha256(FIRST.encode()).hexdigest()


async def test_failing_migration_rolls_back_and_is_not_recorded(
        conn: asyncpg.Connection, db_url: str, migration_dir: Path) -> None:
    """A file that fails names its version, leaves no trace, and does not keep the lock."""
    schema = fresh_schema()
    write(migration_dir, "0003_broken.sql",
          "CREATE TABLE half_done (id int);\nSELECT * FROM no_such_table;\n")
    with pytest.raises(MigrationError, match="0003_broken"):
        await migrate(conn, schema, _read_dir(migration_dir, ""))
    assert [v for v, _ in await recorded(conn, schema)] == [
        "0001_create_ledger", "0002_seed_ledger"]
    assert await conn.fetchval(f"SELECT to_regclass('{schema}.half_done')") is None

    # Another session can take the advisory lock and finish once the file is fixed.
    write(migration_dir, "0003_broken.sql", "CREATE TABLE half_done (id int);\n")
    other = await asyncpg.connect(db_url)
    try:
        applied = await asyncio.wait_for(
            migrate(other, schema, _read_dir(migration_dir, "")), timeout=5)
    finally:
        await other.close()
    assert applied == ["0003_broken"]


async def test_concurrent_migrate_applies_each_migration_once(db_url: str) -> None:
    """Two sessions migrating one schema at once apply every migration exactly once."""
    schema = fresh_schema()
    # Not idempotent on purpose: a second application would fail or double the count.
    migrations = [
        Migration("0001_counter", Path("0001_counter.sql"),
                  "CREATE TABLE applications (version text NOT NULL);\n"
                  "SELECT pg_sleep(0.3);\n"
                  "INSERT INTO applications VALUES ('0001');\n"),
        Migration("0002_more", Path("0002_more.sql"),
                  "INSERT INTO applications VALUES ('0002');\n"),
    ]
    first, second = await asyncpg.connect(db_url), await asyncpg.connect(db_url)
    try:
        results = await asyncio.gather(migrate(first, schema, migrations),
                                       migrate(second, schema, migrations))
        counts = await first.fetch(
            f"SELECT version, count(*) AS n FROM {schema}.applications GROUP BY version "
            "ORDER BY version")
    finally:
        await first.close()
        await second.close()
    assert sorted(results, key=len) == [[], ["0001_counter", "0002_more"]]
    assert [(row["version"], row["n"]) for row in counts] == [("0001", 1), ("0002", 1)]


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    """A file not named NNNN_lower_snake.sql is refused, naming the file."""
    write(tmp_path, "0001_fine.sql", "SELECT 1;")
    write(tmp_path, "2-Oops.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match=re.escape("2-Oops.sql")):
        _read_dir(tmp_path, "")


async def test_invalid_schema_name_is_refused(conn: asyncpg.Connection) -> None:
    """A schema name that is not a plain lower-case identifier is refused before any SQL."""
    with pytest.raises(MigrationError, match="invalid schema name"):
        await migrate(conn, "public; DROP TABLE x", [])


def test_runtime_tables_come_before_service_migrations() -> None:
    """Every service's migration list starts with the shared runtime's files."""
    migrations = service_migrations("membership")
    runtime = [m.version.startswith("runtime/") for m in migrations]
    assert migrations[0].version == "runtime/0001_runtime"
    assert "runtime/0002_dedup_retention" in [m.version for m in migrations]
    assert False in runtime
    assert not any(runtime[runtime.index(False):])
