"""The engagement servicer only translates: protobuf in, one use-case call, protobuf out.

Swept by reading `api/servicer.py` with `ast`: no transaction, connection or database, no
SQL, no repository, no domain or use-case record built by an RPC method (module-level
translation helpers named below may rebuild one from a stored answer), and exactly one
`await` (the use case) per RPC method.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ENGAGEMENT = Path(__file__).resolve().parents[3] / "services" / "engagement"
SERVICER = ENGAGEMENT / "api" / "servicer.py"

FORBIDDEN_NAMES = {"transaction", "connection", "conn", "Connection", "Database", "db", "_db",
                   "IdempotentExecutor", "add_event"}
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b.*\b(FROM|INTO|SET|WHERE)\b", re.S)
# Module-level helpers that turn protobuf into the arguments or results of use cases.
TRANSLATION_HELPERS = {"_owner", "_spec", "activity_from_pb", "sign_in_view", "vote_view",
                       "quiz_result", "koi_entry", "koi_view"}


def _record_classes() -> set[str]:
    """Every class the domain and the use cases define (entities, configs, views)."""
    names: set[str] = set()
    for path in [*(ENGAGEMENT / "domain").glob("*.py"), *(ENGAGEMENT / "usecases").glob("*.py")]:
        tree = ast.parse(path.read_text())
        names |= {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    return names


def _identifiers(node: ast.AST) -> set[str]:
    found: set[str] = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            found.add(child.id)
        elif isinstance(child, ast.Attribute):
            found.add(child.attr)
        elif isinstance(child, ast.arg):
            found.add(child.arg)
        elif isinstance(child, ast.alias):
            found.add((child.asname or child.name).split(".")[-1])
    return found


def _record_name(node: ast.AST) -> str:
    """The name `Grant` or `social.VoteView` refers to; protobuf's `pb.Activity` is not a
    record (generated messages share some names with the domain)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name)
                                                and node.value.id == "pb"):
        return node.attr
    return ""


def _built(node: ast.AST, records: set[str]) -> set[str]:
    """Record classes a node constructs (`Grant(...)`, `social.VoteView(...)`)."""
    return {_record_name(child.func) for child in ast.walk(node)
            if isinstance(child, ast.Call) and _record_name(child.func) in records}


def _named(node: ast.AST, records: set[str]) -> set[str]:
    return {_record_name(child) for child in ast.walk(node)} & records


def problems(source: str, records: set[str]) -> list[str]:
    """What in a servicer's source is not translation."""
    tree = ast.parse(source)
    found = []
    for name in sorted(_identifiers(tree) & FORBIDDEN_NAMES):
        found.append(f"references {name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and ".adapters" in (node.module or ""):
            found.append(f"imports the adapter {node.module}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and SQL.search(node.value):
            found.append(f"holds SQL {node.value[:40]!r}")
    found += [f"references the repository {name}" for name in sorted(_identifiers(tree))
              if name.endswith("Repository")]
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name not in TRANSLATION_HELPERS:
            found += [f"{node.name} builds {c}" for c in sorted(_built(node, records))]
        if isinstance(node, ast.ClassDef):
            for method in node.body:
                if not isinstance(method, ast.AsyncFunctionDef | ast.FunctionDef):
                    continue
                found += [f"{method.name} builds {c}" for c in sorted(_built(method, records))]
                if method.name[:1].isupper():
                    found += [f"{method.name} names the record {name}" for name in
                              sorted(_named(method, records))]
                    awaits = sum(isinstance(n, ast.Await) for n in ast.walk(method))
                    if awaits != 1:
                        found.append(f"{method.name} awaits {awaits} times, not one use case")
    return found


def test_servicer_only_translates() -> None:
    """Every RPC of the engagement servicer calls one use case and builds no record."""
    assert problems(SERVICER.read_text(), _record_classes()) == []


@pytest.mark.parametrize(("source", "problem"), [
    ("async def f(db):\n    async with db.transaction() as conn:\n        pass\n",
     "references conn"),
    ("from services.engagement.adapters.postgres import ParticipationRepository\n",
     "imports the adapter services.engagement.adapters.postgres"),
    ("Q = 'SELECT a FROM b WHERE c'\n", "holds SQL"),
    ("class S:\n    async def CastVote(self, r, c):\n        await self.a()\n"
     "        return await self.b()\n", "CastVote awaits 2 times, not one use case"),
    ("class S:\n    async def SignIn(self, r, c):\n"
     "        return await self.e.sign_in(Grant('g', 'pending'))\n", "SignIn builds Grant"),
    ("class S:\n    async def Draw(self, r, c):\n"
     "        return await self.e.draw(ActivityKind.LOTTERY)\n",
     "Draw names the record ActivityKind"),
    ("def grant_row(g):\n    return Grant(g, 'pending', 0, '', '')\n", "grant_row builds Grant"),
])
def test_sweep_catches(source: str, problem: str) -> None:
    """Each kind of non-translation the sweep looks for is found when present."""
    assert any(p.startswith(problem) for p in problems(source, _record_classes()))


def _has_behaviour(path: Path) -> bool:
    """A module defines a function or a method (not only data fields)."""
    return any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
               for node in ast.walk(ast.parse(path.read_text())))


def test_every_domain_module_with_rules_has_pure_unit_tests() -> None:
    """domain/<module>.py with any function or method has tests/.../test_domain_<module>.py,
    and that test module touches no database, Redis or gRPC."""
    here = Path(__file__).parent
    modules = [p for p in sorted((ENGAGEMENT / "domain").glob("*.py"))
               if p.name != "__init__.py" and _has_behaviour(p)]
    assert len(modules) >= 6
    missing = [p.name for p in modules if not (here / f"test_domain_{p.stem}.py").exists()]
    assert missing == []
    impure = [p.name for p in here.glob("test_domain_*.py")
              if re.search(r"\benv\b|asyncpg|redis|grpc", p.read_text())]
    assert impure == []
