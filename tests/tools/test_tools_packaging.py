"""The installed package (what the container image runs) carries every SQL migration."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tools.stack import ROOT


def test_wheel_contains_every_migration(tmp_path: Path) -> None:
    """A non-editable install ships each service's migrations and the runtime's tables."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, cwd=tmp_path,
                   capture_output=True)
    wheel = next(tmp_path.glob("brandclub-*.whl"))
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".sql")}
    expected = {str(path.relative_to(ROOT)) for path in ROOT.glob("services/*/migrations/*.sql")}
    expected |= {str(path.relative_to(ROOT)) for path in ROOT.glob("libs/runtime_sql/*.sql")}
    assert expected, "no migrations found in the tree"
    assert expected <= shipped, sorted(expected - shipped)
