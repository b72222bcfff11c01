"""Identity's layers, swept with `ast` over every file (the service and its isv sub-area):

- a servicer only translates: no connection, transaction or database, no adapter, no SQL, and
  at most one `await` (the use case) per RPC method;
- use cases and domain read the time only from the injected clock, and hold no SQL;
- the domain imports no grpc, asyncpg, redis, database or generated code.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

IDENTITY = Path(__file__).resolve().parents[3] / "services" / "identity"
SERVICERS = [IDENTITY / "api" / "servicer.py", IDENTITY / "isv" / "api" / "servicer.py"]
USECASES = [*(IDENTITY / "usecases").glob("*.py"), *(IDENTITY / "isv" / "usecases").glob("*.py")]
DOMAIN = [*(IDENTITY / "domain").glob("*.py"), *(IDENTITY / "isv" / "domain").glob("*.py")]

FORBIDDEN_IN_SERVICER = {"transaction", "connection", "conn", "Connection", "Database", "_db",
                         "add_event"}
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b.*\b(FROM|INTO|SET|WHERE)\b", re.S)
WALL_CLOCK = {("datetime", "now"), ("datetime", "utcnow"), ("time", "time"),
              ("date", "today")}
DOMAIN_MAY_NOT_IMPORT = ("grpc", "asyncpg", "redis", "brandclub", "libs.db", "google.protobuf")


def _identifiers(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.arg):
            found.add(node.arg)
    return found


def _sql(tree: ast.AST) -> list[int]:
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and SQL.search(node.value)]


def servicer_problems(source: str) -> list[str]:
    """What in a servicer is more than translating protobuf to one use-case call."""
    tree = ast.parse(source)
    found = [f"references {name}" for name in sorted(_identifiers(tree) & FORBIDDEN_IN_SERVICER)]
    found += [f"imports {node.module}" for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and ".adapters" in (node.module or "")]
    found += [f"SQL on line {line}" for line in _sql(tree)]
    for node in ast.walk(tree):
        if isinstance(node, ast.AsyncFunctionDef) and node.name[:1].isupper():
            awaits = sum(isinstance(child, ast.Await) for child in ast.walk(node))
            if awaits > 1:  # GetPhoneMatchKey's use case is synchronous: no await at all
                found.append(f"{node.name} awaits {awaits} times (one use case expected)")
    return found


def clock_and_sql_problems(source: str) -> list[str]:
    tree = ast.parse(source)
    found = [f"SQL on line {line}" for line in _sql(tree)]
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and (node.value.id, node.attr) in WALL_CLOCK):
            found.append(f"reads {node.value.id}.{node.attr}() on line {node.lineno}")
    return found


def domain_import_problems(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        found += [f"imports {name}" for name in names
                  if name.startswith(DOMAIN_MAY_NOT_IMPORT)]
    return found


@pytest.mark.parametrize("path", SERVICERS, ids=lambda p: str(p.relative_to(IDENTITY)))
def test_servicers_only_translate(path: Path) -> None:
    """Each RPC method is protobuf in, one use-case call, protobuf out."""
    assert servicer_problems(path.read_text()) == []


@pytest.mark.parametrize("path", [*USECASES, *DOMAIN], ids=lambda p: str(p.relative_to(IDENTITY)))
def test_use_cases_and_domain_take_time_from_the_clock_and_hold_no_sql(path: Path) -> None:
    """No wall-clock reads (a test could not move time) and no SQL outside the adapters."""
    assert clock_and_sql_problems(path.read_text()) == []


@pytest.mark.parametrize("path", DOMAIN, ids=lambda p: str(p.relative_to(IDENTITY)))
def test_domain_imports_no_infrastructure(path: Path) -> None:
    """The domain is pure: no grpc, asyncpg, redis, database or generated code."""
    assert domain_import_problems(path.read_text()) == []


def test_the_sweeps_see_what_they_forbid() -> None:
    """Each sweep reports a planted violation (so an empty answer means something)."""
    servicer = (
        "from services.identity.adapters.postgres import AccountRepository\n"
        "class S:\n"
        "    async def GetAccount(self, request, context):\n"
        "        async with self._db.connection() as conn:\n"
        "            a = await get_account(conn, request.account_id)\n"
        "            await conn.execute('UPDATE accounts SET x = 1 WHERE id = $1')\n")
    problems = servicer_problems(servicer)
    assert "references conn" in problems and "references _db" in problems
    assert any(p.startswith("imports services.identity.adapters") for p in problems)
    assert any(p.startswith("SQL") for p in problems)
    assert "GetAccount awaits 2 times (one use case expected)" in problems
    assert clock_and_sql_problems("from datetime import datetime\nx = datetime.now()\n") == [
        "reads datetime.now() on line 2"]
    assert domain_import_problems("import grpc\nfrom libs.db import Connection\n") == [
        "imports grpc", "imports libs.db"]
