"""tools.devstack.Restarter: `./dev up` restarts a service that exits, with a backoff that
doubles up to a cap and resets once the service has stayed up; the others are left alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from tools.devstack import Restarter
from tools.stack import Stack


@dataclass
class FakeProcess:
    pid: int
    returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


@dataclass
class FakeStack:
    """Just what Restarter uses of tools.stack.Stack: the processes and launch()."""

    processes: dict[str, FakeProcess] = field(default_factory=dict)
    launched: list[str] = field(default_factory=list)

    def launch(self, service: str) -> None:
        self.launched.append(service)
        self.processes[service] = FakeProcess(pid=1000 + len(self.launched))


def make() -> tuple[FakeStack, Restarter]:
    stack = FakeStack({"identity": FakeProcess(1), "membership": FakeProcess(2)})
    restarter = Restarter(cast(Stack, cast(Any, stack)), initial=1.0, maximum=4.0, stable=60.0)
    return stack, restarter


def test_an_exited_service_is_relaunched_after_its_backoff_and_only_it() -> None:
    """The exit is reported at once; the relaunch waits for the backoff; others untouched."""
    stack, restarter = make()
    assert restarter.check(0.0) == []
    stack.processes["membership"].returncode = -9
    [exited] = restarter.check(10.0)
    assert "membership exited with code -9" in exited and "in 1 s" in exited
    assert restarter.check(10.5) == [] and stack.launched == []
    [restarted] = restarter.check(11.0)
    assert restarted.startswith("membership restarted")
    assert stack.launched == ["membership"]
    assert stack.processes["identity"].pid == 1


def test_backoff_doubles_up_to_the_cap_and_resets_after_a_stable_run() -> None:
    """Exits in a row wait 1, 2, 4, 4 s; after 60 s up the next exit waits 1 s again."""
    stack, restarter = make()
    now = 0.0
    waits = []
    for _ in range(4):
        stack.processes["membership"].returncode = 1
        [message] = restarter.check(now)
        waits.append(message.split(" in ")[1].split(" s")[0])
        now += 10.0
        restarter.check(now)  # relaunched
    assert waits == ["1", "2", "4", "4"]
    restarter.check(now + 61.0)  # stayed up long enough
    stack.processes["membership"].returncode = 1
    [message] = restarter.check(now + 62.0)
    assert "in 1 s" in message
    assert restarter.restarts == {"membership": 4}
