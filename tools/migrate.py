"""Apply every service's migrations: `python -m tools.migrate [service ...]`."""

from __future__ import annotations

import asyncio
import sys

from libs.config import SERVICE_PORTS, ConfigError, Env
from libs.migrations import MigrationError, migrate_service

SERVICES_WITH_DATA = [name for name in SERVICE_PORTS if name != "gateway"]


async def migrate_all(database_url: str, services: list[str] | None = None) -> dict[str, list[str]]:
    return {name: await migrate_service(database_url, name)
            for name in services or SERVICES_WITH_DATA}


def main() -> None:
    try:
        url = Env().secret_url("DATABASE_URL", ("postgresql", "postgres"))
    except ConfigError as exc:
        raise SystemExit(f"migrate: refusing to start: {exc}") from None
    try:
        applied = asyncio.run(migrate_all(url, sys.argv[1:] or None))
    except MigrationError as exc:
        raise SystemExit(f"migrate: {exc}") from None
    for service, versions in applied.items():
        print(f"migrate: {service}: {len(versions)} applied {' '.join(versions)}".rstrip())


if __name__ == "__main__":
    main()
