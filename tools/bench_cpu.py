"""CPU time per process, the bench figure that survives a noisy machine.

Throughput on a shared 2-core box moves with whatever else runs; the CPU a scenario costs per
operation in each process does not. It is read from `/proc/<pid>/stat` (Linux): utime + stime
of the process (all its threads) plus cutime + cstime (children it has reaped: PostgreSQL's
postmaster collects the time of backends that exited). A group that includes children also
counts its live children (PostgreSQL's backends, one per pooled connection).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
# Fields after the command name in /proc/<pid>/stat (the name is in parentheses and may hold
# spaces, so the line is split after its last ")"): state is 0, ppid 1, utime 11 ... cstime 14.
_PPID, _UTIME, _CSTIME = 1, 11, 14

Pids = Callable[[], Iterable[int]]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None  # gone between listing and reading: its time went to its parent
    return text[text.rindex(")") + 2:].split()


def cpu_seconds(pid: int) -> float:
    """User + system time of a process and of the children it has reaped; 0.0 once gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return sum(int(value) for value in fields[_UTIME:_CSTIME + 1]) / TICKS_PER_SECOND


def children(parent: int) -> list[int]:
    """Live direct children of a process (PostgreSQL's backends under the postmaster)."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and int(fields[_PPID]) == parent:
                found.append(int(entry.name))
    return found


def one(pid: int) -> Pids:
    return lambda: (pid,)


def with_children(pid: int) -> Pids:
    return lambda: (pid, *children(pid))


@dataclass
class CpuMeter:
    """Named process groups whose CPU time is read together (`read`) around a timed window."""

    groups: dict[str, Pids] = field(default_factory=dict)

    def add(self, name: str, pids: Pids) -> None:
        self.groups[name] = pids

    def remove(self, name: str) -> None:
        self.groups.pop(name, None)

    def read(self) -> dict[str, float]:
        return {name: sum(cpu_seconds(pid) for pid in pids())
                for name, pids in self.groups.items()}


def ms_per_operation(before: Mapping[str, float], after: Mapping[str, float],
                     operations: int) -> dict[str, float]:
    """CPU milliseconds per operation in each group between two readings (a group missing
    from either reading is left out); nothing when no operation completed."""
    if operations <= 0:
        return {}
    return {name: round(max(0.0, after[name] - before[name]) * 1000 / operations, 4)
            for name in before if name in after}
