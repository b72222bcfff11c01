"""One way to read the time: services take it from `libs.clock` (a `Clock`), never from the
standard library directly, so a test can move it and every timestamp is UTC-aware."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WALL_CLOCK_READS = re.compile(
    r"datetime\.now\(|datetime\.utcnow\(|datetime\.today\(|date\.today\(|\btime\.time\(\)")


def wall_clock_reads(text: str) -> list[int]:
    return [number for number, line in enumerate(text.splitlines(), 1)
            if WALL_CLOCK_READS.search(line.split("#", 1)[0])]


def test_no_service_reads_the_wall_clock_around_libs_clock() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{line}"
                 for path in sorted((ROOT / "services").rglob("*.py"))
                 for line in wall_clock_reads(path.read_text())]
    assert not offenders, f"read the time from an injected libs.clock.Clock: {offenders}"


def test_the_sweep_sees_each_kind_of_read() -> None:
    for read in ("datetime.now(UTC)", "datetime.utcnow()", "date.today()", "time.time()"):
        assert wall_clock_reads(f"x = {read}\n") == [1], read
    assert wall_clock_reads("x = time.monotonic()  # datetime.now( in a comment\n") == []
