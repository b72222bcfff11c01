"""Membership's layers: servicers only translate (every RPC's flow is one use-case
coroutine), SQL lives only in adapters, and the time comes only from the injected clock.

A servicer that opens a connection or a transaction, holds the database, builds an
idempotent executor, names a repository or an adapter, or carries SQL is running part of a
flow itself; the next reader then has to follow control back and forth between the api
layer and the use cases. This sweep parses every servicer module of the membership process
(the service and its sub-areas) and names each such reference.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

MEMBERSHIP = Path(__file__).resolve().parents[3] / "services" / "membership"
SERVICER_MODULES = sorted(MEMBERSHIP.rglob("api/*.py"))

# Names that belong to the flow, not to the translation of protobuf.
FORBIDDEN_NAMES = {"transaction", "connection", "conn", "Connection", "Database", "db", "_db",
                   "IdempotentExecutor", "acquire", "fetch", "fetchrow", "fetchval", "execute"}
FLOW_MODULES = {"libs.db", "libs.idempotency", "libs.redis", "libs.outbox"}
# SQL as we write it (upper-case keywords), not prose that happens to say "update".
SQL = re.compile(r"\b(SELECT|INSERT INTO|DELETE FROM)\b|\bUPDATE \w+ SET\b")


def layer_violations(source: str) -> list[str]:
    """What in this servicer source runs part of a flow instead of translating."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and (
                ".adapters" in node.module or node.module in FLOW_MODULES
                or node.module.split(".")[0] in {"asyncpg", "redis"}):
            found.append(f"line {node.lineno}: imports {node.module}")
        elif isinstance(node, ast.Import):
            found.extend(f"line {node.lineno}: imports {alias.name}" for alias in node.names
                         if alias.name.split(".")[0] in {"asyncpg", "redis"})
        elif isinstance(node, ast.Name | ast.Attribute | ast.arg):
            name = (node.id if isinstance(node, ast.Name)
                    else node.attr if isinstance(node, ast.Attribute) else node.arg)
            if name in FORBIDDEN_NAMES or name.endswith(("Repository", "Cache")):
                found.append(f"line {node.lineno}: uses {name}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and SQL.search(node.value):
            found.append(f"line {node.lineno}: SQL {node.value[:40]!r}")
    return found


def test_every_servicer_module_is_swept() -> None:
    """The sweep sees the service's servicer and both sub-areas' (it cannot pass empty)."""
    areas = {path.relative_to(MEMBERSHIP).parts[0] for path in SERVICER_MODULES
             if path.name == "servicer.py"}
    assert areas == {"api", "segments", "dashboards"}


@pytest.mark.parametrize("module", SERVICER_MODULES,
                         ids=lambda path: str(path.relative_to(MEMBERSHIP)))
def test_servicer_only_translates(module: Path) -> None:
    """No connection, transaction, database, repository, adapter or SQL in a servicer."""
    assert layer_violations(module.read_text()) == []


NON_ADAPTER_MODULES = sorted(path for path in MEMBERSHIP.rglob("*.py")
                             if "adapters" not in path.parts and "migrations" not in path.parts)


def sql_and_clock_reads(source: str) -> list[str]:
    """SQL text, and reads of the system time that bypass the injected clock."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and SQL.search(node.value):
            found.append(f"line {node.lineno}: SQL {node.value[:40]!r}")
        elif isinstance(node, ast.Attribute) and node.attr in {"now", "utcnow", "today"} \
                and isinstance(node.value, ast.Name) and node.value.id in {"datetime", "date"}:
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("module", NON_ADAPTER_MODULES,
                         ids=lambda path: str(path.relative_to(MEMBERSHIP)))
def test_sql_only_in_adapters_and_time_only_from_the_clock(module: Path) -> None:
    """Outside adapters/: no SQL; and the time comes from the injected `libs.clock` clock."""
    assert sql_and_clock_reads(module.read_text()) == []


@pytest.mark.parametrize("snippet", [
    "ROWS = 'SELECT * FROM members WHERE brand_id = $1'\n",
    "await conn.execute('UPDATE members SET dormant = true')\n",
    "NOW = datetime.now(UTC)\n",
    "TODAY = date.today()\n",
])
def test_the_sql_and_clock_sweep_catches_each_kind(snippet: str) -> None:
    assert sql_and_clock_reads(snippet) != []


@pytest.mark.parametrize("snippet", [
    "async def f(self):\n    async with self._db.connection() as conn:\n        pass\n",
    "async def f(self):\n    async with self.context.db.transaction() as c:\n        pass\n",
    "from services.membership.adapters.members_repository import MemberRepository\n",
    "from libs.db import Connection\n",
    "def f(self):\n    return IdempotentExecutor(self.x)\n",
    "QUERY = 'SELECT 1 FROM members'\n",
    "import asyncpg\n",
])
def test_the_sweep_catches_each_kind_of_flow_code(snippet: str) -> None:
    """Each forbidden shape, alone, is reported (so a clean result means something)."""
    assert layer_violations(snippet) != []
