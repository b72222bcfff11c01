"""Dump and restore every service's schema: `./dev backup dump DIR` / `./dev backup restore DIR`.

A backup is a directory: `brandclub.dump` (pg_dump's custom format: compressed, restorable
table by table with pg_restore) and `manifest.json` (when, from which server, and the row
count of every table, counted in the very snapshot pg_dump copies). A restore goes into a
database that holds none of the schemas yet, in one transaction, and then counts every table
again against the manifest, so a backup is proven restorable, not assumed.

The client programs (pg_dump, pg_restore) must be at least the server's major version: they
are taken from PG_BIN when set, else from the embedded PostgreSQL's own installation (dev),
else from PATH. DATABASE_URL (or --database-url) names the database; a password in it is
passed to the programs through PGPASSWORD, never on their command line.

Usage:
  python -m tools.backup dump DIR [--database-url URL]
  python -m tools.backup restore DIR [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from libs.config import ConfigError, Env
from libs.db import DatabaseUnreachable, connect, describe_location
from tools.migrate import SERVICES_WITH_DATA

DUMP_FILE = "brandclub.dump"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
SCHEMAS = tuple(SERVICES_WITH_DATA)

RowCounts = dict[str, dict[str, int]]  # schema -> table -> rows


class BackupError(RuntimeError):
    """The backup or restore cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    """A database for libpq programs: the URL without its password, and the environment that
    carries the password."""

    url: str
    env: dict[str, str]

    @classmethod
    def from_url(cls, url: str) -> Target:
        parts = urlsplit(url)
        env = dict(os.environ)
        if parts.password:
            env["PGPASSWORD"] = parts.password
            host = parts.netloc.rsplit("@", 1)[1]
            user = f"{parts.username}@" if parts.username else ""
            parts = parts._replace(netloc=user + host)
        return cls(urlunsplit(parts), env)


def client_program(name: str, server_major: int) -> str:
    """The first pg_dump/pg_restore (PG_BIN, the embedded installation, PATH) whose major
    version can read this server."""
    found: list[str] = []
    for directory in _program_directories():
        program = shutil.which(name, path=directory) if directory else shutil.which(name)
        if program is None:
            continue
        major = _major_version(program)
        found.append(f"{program} ({major})")
        if major >= server_major:
            return program
    raise BackupError(
        f"no {name} of PostgreSQL {server_major} or newer (found: {', '.join(found) or 'none'}); "
        f"install the PostgreSQL {server_major} client programs or set PG_BIN to their directory")


def _program_directories() -> Iterator[str | None]:
    pg_bin = Env().optional_text("PG_BIN")
    if pg_bin:
        yield pg_bin
    try:
        import pgserver  # development only (the embedded server ships its client programs)
    except ImportError:
        pass
    else:
        yield str(Path(pgserver.__file__).parent / "pginstall" / "bin")
    yield None  # PATH


def _major_version(program: str) -> int:
    output = subprocess.run([program, "--version"], capture_output=True, text=True,
                            check=True).stdout
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", output)
    return int(match.group(1)) if match else 0


async def row_counts(conn: asyncpg.Connection) -> RowCounts:
    """Every table of every service schema with its exact row count."""
    tables = await conn.fetch(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' AND table_schema = ANY($1::text[]) "
        "ORDER BY table_schema, table_name", list(SCHEMAS))
    counts: RowCounts = {schema: {} for schema in SCHEMAS}
    for table in tables:
        schema, name = table["table_schema"], table["table_name"]
        counts[schema][name] = await conn.fetchval(f'SELECT count(*) FROM {schema}."{name}"')
    return counts


async def dump(database_url: str, directory: Path) -> RowCounts:
    """Write the backup of every service schema into `directory` (new or empty)."""
    _prepare_directory(directory)
    conn = await connect(database_url)
    try:
        server_version = await conn.fetchval("SHOW server_version")
        missing = [schema for schema in SCHEMAS if not await conn.fetchval(
            "SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)]
        if missing:
            raise BackupError(f"the database at {describe_location(database_url)} has no schema "
                              f"{', '.join(missing)}: run the migrations first")
        pg_dump = client_program("pg_dump", conn.get_server_version().major)
        # One snapshot for the counts and the dump: the manifest describes exactly what
        # pg_dump copies, even while the services keep writing.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            counts = await row_counts(conn)
            target = Target.from_url(database_url)
            await _run([pg_dump, "--format=custom", "--no-owner", "--no-privileges",
                        f"--snapshot={snapshot}", *(f"--schema={s}" for s in SCHEMAS),
                        f"--file={directory / DUMP_FILE}", f"--dbname={target.url}"],
                       target.env)
    finally:
        await conn.close()
    manifest = {"format": MANIFEST_FORMAT,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "server_version": server_version, "schemas": counts}
    _write_manifest(directory, manifest)
    return counts


def _prepare_directory(directory: Path) -> None:
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty: a backup goes into a new directory")
    directory.mkdir(parents=True, exist_ok=True)


def _write_manifest(directory: Path, manifest: dict[str, object]) -> None:
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")


async def restore(database_url: str, directory: Path) -> RowCounts:
    """Restore a backup into a database that holds none of its schemas, then prove every
    table holds the rows the manifest counted."""
    manifest = _read_manifest(directory)
    conn = await connect(database_url)
    try:
        present = [row["nspname"] for row in await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname = ANY($1::text[]) ORDER BY 1",
            list(manifest["schemas"]))]
        if present:
            raise BackupError(
                f"the database at {describe_location(database_url)} already has schema "
                f"{', '.join(present)}: restore into a new, empty database")
        pg_restore = client_program("pg_restore", conn.get_server_version().major)
        target = Target.from_url(database_url)
        await _run([pg_restore, "--no-owner", "--no-privileges", "--exit-on-error",
                    "--single-transaction", f"--dbname={target.url}",
                    str(directory / DUMP_FILE)], target.env)
        restored = await row_counts(conn)
    finally:
        await conn.close()
    expected: RowCounts = manifest["schemas"]
    differences = [f"{schema}.{table}: {rows} in the backup, {restored[schema].get(table)} "
                   "restored" for schema, tables in expected.items()
                   for table, rows in tables.items() if restored[schema].get(table) != rows]
    if differences:
        raise BackupError("the restore does not match the manifest: " + "; ".join(differences))
    return restored


def _read_manifest(directory: Path) -> dict[str, RowCounts]:
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{directory} is not a backup ({MANIFEST_FILE}: {exc})") from None
    if manifest.get("format") != MANIFEST_FORMAT or not (directory / DUMP_FILE).is_file():
        raise BackupError(f"{directory} is not a backup of this format "
                          f"(needs {MANIFEST_FILE} format {MANIFEST_FORMAT} and {DUMP_FILE})")
    return manifest  # type: ignore[no-any-return]


async def _run(command: list[str], env: dict[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, stderr = await process.communicate()
    if process.returncode != 0:
        detail = stderr.decode(errors="replace").strip().splitlines()
        raise BackupError(f"{Path(command[0]).name} failed ({process.returncode}): "
                          + (detail[-1] if detail else "no message"))


def summary(counts: RowCounts) -> str:
    return ", ".join(f"{schema} {len(tables)} tables {sum(tables.values())} rows"
                     for schema, tables in counts.items())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="backup", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("dump", "restore"))
    parser.add_argument("directory", type=Path)
    parser.add_argument("--database-url", help="default: DATABASE_URL")
    args = parser.parse_args(argv)
    try:
        url = args.database_url or Env().secret_url("DATABASE_URL", ("postgresql", "postgres"))
    except ConfigError as exc:
        raise SystemExit(f"backup: {args.action}: name the database: {exc}; or pass "
                         "--database-url (for the local suite, the `database` URL that "
                         "./dev up prints)") from None
    try:
        action = dump if args.action == "dump" else restore
        counts = asyncio.run(action(url, args.directory))
    except (ConfigError, DatabaseUnreachable, BackupError) as exc:
        raise SystemExit(f"backup: {args.action}: {exc}") from None
    verb = "dumped" if args.action == "dump" else "restored and verified"
    print(f"backup: {verb} {args.directory}: {summary(counts)}", file=sys.stderr)


if __name__ == "__main__":
    main()
