"""tools.backup: a populated database dumped and restored into a fresh one holds the same rows
in every table of every service schema, and the tool refuses what would lose data."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import database_url
from tools.backup import DUMP_FILE, MANIFEST_FILE, SCHEMAS, BackupError, dump, main, restore
from tools.migrate import SERVICES_WITH_DATA


@pytest.fixture
async def fresh_database(postgres_server_url: str) -> AsyncIterator[str]:
    """An empty database (no schema migrated), dropped afterwards."""
    name = f"restore_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    yield database_url(postgres_server_url, name)
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


async def populate(url: str) -> None:
    """Rows in every schema (the shared runtime's tables exist in each) and in a service's own
    tables, different counts per schema so that a mix-up shows."""
    conn = await asyncpg.connect(url)
    try:
        for index, schema in enumerate(SCHEMAS, start=1):
            for n in range(index):
                await conn.execute(
                    f"INSERT INTO {schema}.outbox (event_id, topic, envelope) "
                    "VALUES ($1, 'brandclub.test', $2)", f"{schema}-{n}", bytes([index, n, 0]))
            await conn.execute(
                f"INSERT INTO {schema}.idempotency_keys (method, request_id, fingerprint) "
                "VALUES ('/Test', $1, $2)", f"req-{schema}", b"\x00\xff")
        await conn.execute("INSERT INTO membership.brands (brand_id, display_name, mode, "
                           "time_zone) VALUES ('brd_1', 'Brand Ü', 'connected', 'Asia/Shanghai')")
        await conn.execute("INSERT INTO membership.shops (shop_id, brand_id, display_name) "
                           "VALUES ('shp_1', 'brd_1', 'Flagship')")
    finally:
        await conn.close()


async def counts_per_table(url: str) -> dict[str, int]:
    """Every table of every service schema with its row count, counted by the test itself."""
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT table_schema || '.' || table_name AS name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema = ANY($1::text[])",
            SERVICES_WITH_DATA)
        return {row["name"]: await conn.fetchval(f"SELECT count(*) FROM {row['name']}")
                for row in tables}
    finally:
        await conn.close()


async def test_dump_and_restore_keep_every_row_of_every_schema(
        db_url: str, fresh_database: str, tmp_path: Path) -> None:
    """Dump a populated database, restore it into a fresh one: every table of every schema
    has the same row count, contents and sequences carry over, migrations are recorded."""
    await populate(db_url)
    backup = tmp_path / "backup"
    dumped = await dump(db_url, backup)
    assert (backup / DUMP_FILE).stat().st_size > 0
    manifest = json.loads((backup / MANIFEST_FILE).read_text())
    assert manifest["schemas"] == dumped

    await restore(fresh_database, backup)

    source, restored = await counts_per_table(db_url), await counts_per_table(fresh_database)
    assert {name.split(".")[0] for name in source} == set(SERVICES_WITH_DATA)
    assert restored == source
    assert {source[f"{s}.outbox"] for s in SCHEMAS} == set(range(1, len(SCHEMAS) + 1))
    assert all(source[f"{s}.schema_migrations"] > 0 for s in SCHEMAS)
    conn = await asyncpg.connect(fresh_database)
    try:
        assert await conn.fetchval(
            "SELECT display_name FROM membership.brands WHERE brand_id = 'brd_1'") == "Brand Ü"
        assert await conn.fetchval(
            "SELECT envelope FROM benefits.outbox WHERE event_id = 'benefits-2'") == b"\x03\x02\x00"
        # Sequences carry over: the next outbox row continues after the restored ones.
        next_id = await conn.fetchval(
            "INSERT INTO engagement.outbox (event_id, topic, envelope) "
            "VALUES ('after', 't', '') RETURNING id")
        assert next_id > await conn.fetchval(
            "SELECT max(id) FROM engagement.outbox WHERE event_id <> 'after'")
    finally:
        await conn.close()


async def test_restore_refuses_a_database_that_has_the_schemas(
        db_url: str, tmp_path: Path) -> None:
    """Restoring over a database that already has the schemas is refused, naming them, and
    changes nothing."""
    await populate(db_url)
    await dump(db_url, tmp_path / "backup")
    before = await counts_per_table(db_url)
    schemas = "benefits, engagement, identity, membership, messaging"
    with pytest.raises(BackupError, match=f"already has schema {schemas}: restore into a new"):
        await restore(db_url, tmp_path / "backup")
    assert await counts_per_table(db_url) == before


async def test_dump_refuses_a_directory_that_is_not_empty(db_url: str, tmp_path: Path) -> None:
    """A backup never writes over files already in its directory."""
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(BackupError, match="is not empty"):
        await dump(db_url, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


async def test_dump_refuses_a_database_that_was_never_migrated(
        fresh_database: str, tmp_path: Path) -> None:
    """A database without the service schemas is named, with what to do."""
    with pytest.raises(BackupError, match=r"has no schema identity, .*run the migrations"):
        await dump(fresh_database, tmp_path / "backup")


def test_cli_says_what_is_not_a_backup(tmp_path: Path) -> None:
    """`backup restore DIR` on a directory without a manifest ends in one line saying so."""
    with pytest.raises(SystemExit) as caught:
        main(["restore", str(tmp_path), "--database-url", "postgresql://u@127.0.0.1:1/x"])
    assert str(caught.value).startswith(f"backup: restore: {tmp_path} is not a backup")


def test_cli_asks_for_the_database_when_none_is_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without DATABASE_URL or --database-url the tool says how to name the database."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(SystemExit) as caught:
        main(["dump", str(tmp_path / "backup")])
    message = str(caught.value)
    assert message.startswith("backup: dump: name the database: DATABASE_URL is not set")
    assert "--database-url" in message
    assert not (tmp_path / "backup").exists()
