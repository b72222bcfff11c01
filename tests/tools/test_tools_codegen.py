"""tools.codegen: the committed gen/ is what the protos generate, and staleness is caught."""

from __future__ import annotations

import shutil
from pathlib import Path

from tools.codegen import GEN_ROOT, differences, generate


def test_committed_gen_matches_the_protos(tmp_path: Path) -> None:
    """Generating from protos/ reproduces gen/ byte for byte."""
    fresh = tmp_path / "gen"
    generate(fresh)
    assert differences(fresh, GEN_ROOT) == []


def test_a_stale_or_missing_file_is_reported(tmp_path: Path) -> None:
    """An edited generated file and a missing one are both named."""
    fresh = tmp_path / "fresh"
    generate(fresh)
    stale = tmp_path / "stale"
    shutil.copytree(fresh, stale)
    edited = next(stale.rglob("membership_service_pb2.py"))
    edited.write_text(edited.read_text() + "\n# edited by hand\n")
    removed = next(stale.rglob("identity_service_pb2.pyi"))
    removed.unlink()
    problems = differences(fresh, stale)
    assert any(p.startswith("stale:") and p.endswith("membership_service_pb2.py")
               for p in problems)
    assert any(p.startswith("missing:") and p.endswith("identity_service_pb2.pyi")
               for p in problems)
