"""No file under tests/ imports from a test module: shared helpers live in modules pytest does
not collect (helpers.py, *_helpers.py, signature_cases.py, conftest.py), so running or moving
one test file never drags another's tests, fixtures or module-level setup along."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _is_test_module(dotted: str) -> bool:
    """A module of ours under tests/ named test_* (a library's `test_utils` is not one)."""
    parts = dotted.split(".")
    return parts[0] == "tests" and any(part.startswith("test_") for part in parts)


def _package_of(path: Path) -> str:
    return ".".join(path.relative_to(TESTS.parent).with_suffix("").parts[:-1])


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if node.level == 0:
        return node.module or ""
    base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of_test_modules(source: str, package: str) -> list[str]:
    """The test modules `source` imports from (anywhere in it, not only at the top)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, package)
            if _is_test_module(module):
                found.append(module)
            elif module.split(".")[0] == "tests":  # `from tests.x import test_y`: by name
                found += [f"{module}.{alias.name}" for alias in node.names
                          if alias.name.startswith("test_")]
    return found


def test_no_file_under_tests_imports_a_test_module() -> None:
    """Every import in every file under tests/ names a helper module, never a test_* one."""
    offenders = {
        str(path.relative_to(TESTS.parent)): modules
        for path in sorted(TESTS.rglob("*.py"))
        if (modules := imports_of_test_modules(path.read_text(encoding="utf-8"),
                                               _package_of(path)))
    }
    assert offenders == {}, f"move these helpers into a non-test module: {offenders}"


def test_the_sweep_sees_every_form_of_import() -> None:
    """Absolute, relative, by-name and function-local imports of a test module are all seen;
    helper modules and conftest are not."""
    source = "\n".join([
        "import tests.e2e.test_dev_up",
        "from tests.services.gateway.test_console_reach import call",
        "from .test_isv_oauth import new_app",
        "from tests.services import test_signature_checks",
        "def late():",
        "    from tests.e2e.test_dev_up import start",
        "from tests.services.gateway.helpers import bearer",
        "from tests.conftest import database_url",
        "from aiohttp.test_utils import TestServer",
        "from .isv_helpers import reason",
    ])
    assert imports_of_test_modules(source, "tests.services.identity_isv") == [
        "tests.e2e.test_dev_up",
        "tests.services.gateway.test_console_reach",
        "tests.services.identity_isv.test_isv_oauth",
        "tests.services.test_signature_checks",
        "tests.e2e.test_dev_up",
    ]
