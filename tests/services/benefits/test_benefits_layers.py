"""Benefits' servicers only translate: every RPC's flow is one use-case coroutine.

A servicer that opens a connection or a transaction, holds the database, builds an
idempotent executor, checks membership itself, names a repository or an adapter, carries SQL,
or awaits more than one thing in an rpc is running part of a flow itself. This sweep parses
every module of benefits' api layer and names each such reference; a second sweep finds SQL
anywhere outside `adapters/`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from brandclub.benefits.v1 import benefits_service_pb2 as pb

BENEFITS = Path(__file__).resolve().parents[3] / "services" / "benefits"
API_MODULES = sorted(BENEFITS.glob("api/*.py"))
RPCS = {m.name for s in pb.DESCRIPTOR.services_by_name.values() for m in s.methods}

# Names that belong to the flow, not to the translation of protobuf.
FORBIDDEN_NAMES = {"transaction", "connection", "conn", "Connection", "Database", "db", "_db",
                   "IdempotentExecutor", "acquire", "fetch", "fetchrow", "fetchval", "execute",
                   "executemany", "Record", "require_member", "membership", "Ledger"}
FLOW_MODULES = {"libs.db", "libs.idempotency", "libs.redis", "libs.outbox", "libs.paging"}
# SQL as we write it: upper-case keywords (prose such as "select its members" is not SQL).
SQL = re.compile(r"\b(SELECT \S|INSERT INTO|UPDATE \w+ SET|DELETE FROM)")


def layer_violations(source: str) -> list[str]:
    """What in this api-layer source runs part of a flow instead of translating."""
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
        elif isinstance(node, ast.AsyncFunctionDef) and node.name in RPCS:
            awaits = sum(isinstance(n, ast.Await) for n in ast.walk(node))
            if awaits != 1:
                found.append(f"line {node.lineno}: {node.name} awaits {awaits} times, not once")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and SQL.search(node.value):
            found.append(f"line {node.lineno}: SQL {node.value[:40]!r}")
    return found


def test_every_rpc_is_swept() -> None:
    """The api layer defines every rpc of both services (the sweep cannot pass empty)."""
    defined = {node.name for module in API_MODULES
               for node in ast.walk(ast.parse(module.read_text()))
               if isinstance(node, ast.AsyncFunctionDef)}
    assert RPCS and defined >= RPCS


@pytest.mark.parametrize("module", API_MODULES,
                         ids=lambda path: str(path.relative_to(BENEFITS)))
def test_servicer_only_translates(module: Path) -> None:
    """No connection, transaction, database, repository, adapter, SQL, membership check or
    second await in the api layer."""
    assert layer_violations(module.read_text()) == []


@pytest.mark.parametrize("snippet", [
    "async def f(self):\n    async with self._db.connection() as conn:\n        pass\n",
    "async def f(self):\n    async with self.app.db.transaction() as c:\n        pass\n",
    "from services.benefits.adapters.points_repository import PointsRepository\n",
    "from libs.db import Connection\n",
    "def f(self):\n    return IdempotentExecutor(self.x)\n",
    "QUERY = 'SELECT 1 FROM points_lots'\n",
    "QUERY = 'UPDATE points_lots SET remaining = 0'\n",
    "import asyncpg\n",
    "async def f(self, r):\n    await require_member(self.m, r.brand_id, r.account_id)\n",
    "async def GrantPoints(self, request, context):\n"
    "    await check(request)\n    return await grant(request)\n",
])
def test_the_sweep_catches_each_kind_of_flow_code(snippet: str) -> None:
    """Each forbidden shape, alone, is reported (so a clean result means something)."""
    assert layer_violations(snippet) != []


OUTSIDE_ADAPTERS = sorted(p for p in BENEFITS.rglob("*.py") if "adapters" not in p.parts)


@pytest.mark.parametrize("module", OUTSIDE_ADAPTERS,
                         ids=lambda path: str(path.relative_to(BENEFITS)))
def test_no_sql_outside_adapters(module: Path) -> None:
    """Use cases, domain and api hold no SQL and call no connection method that runs it."""
    found = [f"line {node.lineno}"
             for node in ast.walk(ast.parse(module.read_text()))
             if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                 and SQL.search(node.value))
             or (isinstance(node, ast.Attribute) and node.attr in
                 {"fetch", "fetchrow", "fetchval", "execute", "executemany"})]
    assert found == []
