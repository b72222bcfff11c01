"""`./dev test`: everything CI checks, in order, stopping at the first failure.

codegen freshness (in ./dev), buf lint and buf breaking (tools/codegen.py: the protos against
protos/buf.yaml and the last release's protos/baseline.binpb), ruff, mypy, then the whole pytest
suite, which also prints its 25 slowest tests. `./dev test <args>` runs only pytest, with those
arguments as given. pytest's exit code 5 (no tests collected) counts as a failure: a suite that
ran nothing proves nothing.

`./dev test --redis-cluster [<args>]` runs the Redis-facing tests (or the pytest arguments
given) against a local three-master Redis Cluster instead of the single embedded Redis (the
flag goes on to pytest, where tests/conftest.py reads it), so a key family split across slots
or a multi-key command over several slots fails there.
"""

from __future__ import annotations

import subprocess
import sys
import time

from tools.stack import ROOT

PYTEST_NO_TESTS = 5
WHOLE_SUITE_ARGS = ["--durations=25"]
REDIS_CLUSTER_FLAG = "--redis-cluster"
# The Redis-facing tests: the client, the slot sweep and cluster runs, the event bus and
# outbox, idempotency, the gateway quotas (scripts), card cache and lottery stock Lua.
REDIS_FACING_TESTS = [
    "tests/libs/test_libs_redis.py", "tests/libs/test_libs_redis_cluster.py",
    "tests/libs/test_libs_outbox_eventbus.py", "tests/libs/test_libs_idempotency.py",
    "tests/services/gateway/test_gateway_quotas.py",
    "tests/services/membership/test_membership_cards.py",
    "tests/services/engagement/test_engagement_lottery.py",
]


def step(name: str, args: list[str]) -> int:
    print(f"check: {name}: {' '.join(args)}", flush=True)
    started = time.monotonic()
    code = subprocess.call(args, cwd=ROOT)
    print(f"check: {name}: exit {code} in {time.monotonic() - started:.1f}s", flush=True)
    return code


def main() -> None:
    python = sys.executable
    pytest_args = sys.argv[1:]
    if pytest_args == [REDIS_CLUSTER_FLAG]:
        pytest_args += REDIS_FACING_TESTS
    if not pytest_args:
        for name, args in [
            ("buf lint", [python, "-m", "tools.codegen", "--lint"]),
            ("buf breaking", [python, "-m", "tools.codegen", "--breaking"]),
            ("ruff", [python, "-m", "ruff", "check", "."]),
            ("mypy", [python, "-m", "mypy", "libs", "services", "tools", "tests"]),
        ]:
            if step(name, args) != 0:
                raise SystemExit(f"check: {name} failed")
        pytest_args = WHOLE_SUITE_ARGS
    code = step("pytest", [python, "-m", "pytest", *pytest_args])
    if code == PYTEST_NO_TESTS:
        raise SystemExit("check: pytest collected no tests; that is a failure")
    if code != 0:
        raise SystemExit(f"check: pytest failed with exit code {code}")
    print("check: all green")


if __name__ == "__main__":
    main()
