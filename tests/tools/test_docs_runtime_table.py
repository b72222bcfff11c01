"""docs/architecture.md stays true to libs/: its runtime table names every module."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_runtime_table_names_every_libs_module() -> None:
    """A module added to libs/ without a row in "Runtime (libs/)" fails here."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Runtime (libs/)", 1)[1].split("\n## ", 1)[0]
    modules = {path.stem for path in (ROOT / "libs").glob("*.py") if path.stem != "__init__"}
    missing = sorted(name for name in modules if f"`{name}`" not in section)
    assert not missing, f"add these libs modules to docs/architecture.md: {missing}"
