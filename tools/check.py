"""`./dev test`: everything CI checks, in order, stopping at the first failure.

codegen freshness (in ./dev), buf lint and buf breaking (tools/codegen.py: the protos against
protos/buf.yaml and the last release's protos/baseline.binpb), ruff, mypy, then the whole pytest
suite, which also prints its 25 slowest tests. `./dev test <args>` runs only pytest, with those
arguments as given. pytest's exit code 5 (no tests collected) counts as a failure: a suite that
ran nothing proves nothing.
"""

from __future__ import annotations

import subprocess
import sys
import time

from tools.stack import ROOT

PYTEST_NO_TESTS = 5
WHOLE_SUITE_ARGS = ["--durations=25"]


def step(name: str, args: list[str]) -> int:
    print(f"check: {name}: {' '.join(args)}", flush=True)
    started = time.monotonic()
    code = subprocess.call(args, cwd=ROOT)
    print(f"check: {name}: exit {code} in {time.monotonic() - started:.1f}s", flush=True)
    return code


def main() -> None:
    python = sys.executable
    pytest_args = sys.argv[1:]
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
