"""Where the time comes from: one `Clock` shape for every service.

A use case that reads the time takes a `clock: Clock` (default `system_clock`), so a test can
move time without patching the standard library.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Now, timezone-aware in UTC (never naive: every timestamp we store is UTC)."""
    return datetime.now(UTC)
