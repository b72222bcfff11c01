"""Apply every service's migrations: `python -m tools.migrate [service ...]`."""

from __future__ import annotations

import asyncio
import sys

from libs.config import SERVICE_PORTS, ConfigError, Env
from libs.db import DatabaseUnreachable
from libs.migrations import DEFAULT_LOCK_WAIT_SECONDS, MigrationError, migrate_service

SERVICES_WITH_DATA = [name for name in SERVICE_PORTS if name != "gateway"]


async def migrate_all(database_url: str, services: list[str] | None = None, *,
                      lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
                      ) -> dict[str, list[str]]:
    return {name: await migrate_service(database_url, name, lock_wait_seconds=lock_wait_seconds)
            for name in services or SERVICES_WITH_DATA}


def main() -> None:
    env = Env()
    try:
        url = env.secret_url("DATABASE_URL", ("postgresql", "postgres"))
        lock_wait = env.number("MIGRATION_LOCK_WAIT_SECONDS", DEFAULT_LOCK_WAIT_SECONDS,
                               minimum=0.001)
    except ConfigError as exc:
        raise SystemExit(f"migrate: refusing to start: {exc}") from None
    try:
        applied = asyncio.run(migrate_all(url, sys.argv[1:] or None, lock_wait_seconds=lock_wait))
    except (MigrationError, DatabaseUnreachable) as exc:
        raise SystemExit(f"migrate: {exc}") from None
    for service, versions in applied.items():
        print(f"migrate: {service}: {len(versions)} applied {' '.join(versions)}".rstrip())


if __name__ == "__main__":
    main()
