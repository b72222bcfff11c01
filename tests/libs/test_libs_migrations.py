"""libs.migrations against a real PostgreSQL: ordered, recorded, immutable, and serialised."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from libs.migrations import (
    Migration,
    MigrationError,
    MigrationLockTimeout,
    _lock_key,
    _read_dir,
    migrate,
    service_migrations,
)

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



def lock_ids(key: int) -> tuple[int, int]:
    """A bigint advisory key as pg_locks shows it: (classid, objid)."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


async def waiting_for(conn: asyncpg.Connection, key: int) -> int:
    """How many sessions wait (not yet granted) for this advisory lock."""
    classid, objid = lock_ids(key)
    return int(await conn.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND classid::bigint = $1 AND objid::bigint = $2", classid, objid))


async def until_waiting(conn: asyncpg.Connection, key: int, count: int) -> None:
    """Poll pg_locks (another session's lock queue has no event to wait on)."""
    async with asyncio.timeout(10):
        while True:
            if await waiting_for(conn, key) == count:
                return
            await asyncio.sleep(0.02)


async def connections(db_url: str, count: int, **kwargs: Any) -> list[asyncpg.Connection]:
    return [await asyncpg.connect(db_url, **kwargs) for _ in range(count)]


async def test_second_migrator_waits_for_the_first_then_skips(db_url: str) -> None:
    """A migrator arriving while another applies waits for it, then finds nothing to do;
    the lock is transaction-level, so no session keeps it afterwards."""
    schema = fresh_schema()
    gate = 424242  # held by the test: the first migrator's migration waits on it
    migrations = [Migration("0001_gated", Path("0001_gated.sql"),
                            f"SELECT pg_advisory_xact_lock({gate});\n"
                            "CREATE TABLE applied (n int);\nINSERT INTO applied VALUES (1);\n")]
    control, first, second = await connections(db_url, 3)
    try:
        await control.execute("SELECT pg_advisory_lock($1)", gate)
        first_run = asyncio.create_task(migrate(first, schema, migrations))
        await until_waiting(control, gate, 1)  # the first holds the migration lock
        second_run = asyncio.create_task(migrate(second, schema, migrations))
        await until_waiting(control, _lock_key(schema), 1)  # the second waits for it
        await control.execute("SELECT pg_advisory_unlock($1)", gate)
        assert await first_run == ["0001_gated"]
        assert await second_run == []
        assert await control.fetchval(f"SELECT count(*) FROM {schema}.applied") == 1
        assert await control.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0
    finally:
        for conn in (control, first, second):
            await conn.close()


async def test_lock_held_past_the_bound_fails_naming_the_holder(db_url: str) -> None:
    """A migrator that cannot get the lock within its bound gives up with a MigrationError
    naming the schema, the bound and the holder's pid and application, and leaves nothing
    behind (no lock, no schema)."""
    schema = fresh_schema()
    holder, waiter = await connections(
        db_url, 2, server_settings={"application_name": "migrate-on-pod-7"})
    try:
        holder_pid = await holder.fetchval("SELECT pg_backend_pid()")
        async with holder.transaction():
            await holder.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(schema))
            with pytest.raises(MigrationLockTimeout) as caught:
                await migrate(waiter, schema, [], lock_wait_seconds=0.2)
        message = str(caught.value)
        assert message.startswith(f"{schema}: the migration lock is still held after 0.2 s")
        assert f"pid {holder_pid} (migrate-on-pod-7" in message
        assert await waiter.fetchval("SELECT current_setting('lock_timeout')") == "0"
        assert await waiter.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema) == 0
        # Once the holder is done, the same session migrates normally.
        assert await migrate(waiter, schema, [], lock_wait_seconds=0.2) == []
    finally:
        await holder.close()
        await waiter.close()


async def test_migration_session_holds_no_lock_between_transactions(db_url: str) -> None:
    """Pooler-safe: after migrate() returns, its session holds no advisory lock at all (a
    session-level lock would stay on a pooled server connection another client then gets)."""
    conn = await asyncpg.connect(db_url)
    try:
        await migrate(conn, fresh_schema(), [Migration(
            "0001_t", Path("0001_t.sql"), "CREATE TABLE t (id int);\n")])
        assert await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND pid = pg_backend_pid()") == 0
    finally:
        await conn.close()
