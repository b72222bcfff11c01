"""First contact: `./dev` checks the Python it is given before installing anything, rebuilds a
.venv made by another Python, shows each install step, and an unreachable DATABASE_URL ends in
one line naming the variable and the host (no traceback).

The `./dev` cases run a copy of the script in a temporary directory with stand-in
interpreters (small shell scripts that report a version and record what they were asked), so
they exercise the script's own logic in a second without touching the real .venv.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from libs.db import DatabaseUnreachable, connect
from libs.ports import held_closed_port
from tools.stack import ROOT

FAKE_PYTHON = """#!/bin/sh
# A stand-in Python {version}: answers the version question, makes a venv holding a copy of
# itself, pretends to install, and says what else it was asked to run.
case "$1" in
  -c) echo {version} ;;
  -m)
    case "$2" in
      venv) mkdir -p "$3/bin"
            if [ -n "$FAKE_NO_ENSUREPIP" ]; then echo "ensurepip is not available" >&2; exit 1; fi
            cp "$0" "$3/bin/python" ;;
      pip) case "$*" in
             *requirements.lock*)
               echo "Collecting aiohttp==3.14.5 (from -r requirements.lock (line 5))"
               echo "  Using cached aiohttp-3.14.5.whl"
               echo "Collecting grpcio==1.85.1 (from -r requirements.lock (line 9))"
               echo "Installing collected packages: aiohttp, grpcio"
               echo "Successfully installed aiohttp-3.14.5 grpcio-1.85.1" ;;
           esac ;;
      tools.codegen) ;;
      *) echo "ran module $2" ;;
    esac ;;
  *) echo "ran $*" ;;
esac
"""


def fake_python(path: Path, version: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FAKE_PYTHON.format(version=version))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the entry point with the files it hashes: a fresh clone, as far as ./dev
    can tell."""
    for name in ("dev", "requirements.lock", "requirements-nodeps.lock", "pyproject.toml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def run_dev(checkout: Path, python: Path | str, *args: str,
            **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": str(python), **extra_env}
    return subprocess.run([str(checkout / "dev"), *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.mark.parametrize("version", ["3.10.12", "3.9.18", "2.7.18"])
def test_dev_refuses_an_older_python_before_installing(checkout: Path, version: str) -> None:
    """An older Python is refused at once, naming its version and what is needed; no .venv
    is made and nothing is installed."""
    result = run_dev(checkout, fake_python(checkout / "bin" / "python3", version), "up")
    assert result.returncode == 1
    assert f"needs Python 3.11 or newer; '{checkout}/bin/python3' is Python {version}" \
        in result.stderr
    assert "PYTHON=python3.11 ./dev up" in result.stderr
    assert not (checkout / ".venv").exists()


def test_dev_names_a_python_that_does_not_run(checkout: Path) -> None:
    """A PYTHON that does not exist is named, with what is needed."""
    result = run_dev(checkout, checkout / "no-such-python", "test")
    assert result.returncode == 1
    assert f"needs Python 3.11 or newer, and '{checkout}/no-such-python' does not run" \
        in result.stderr
    assert "PYTHON=python3.11 ./dev test" in result.stderr


def test_dev_rebuilds_a_venv_made_by_another_python(checkout: Path) -> None:
    """A .venv whose interpreter is another minor version is removed and made again with the
    chosen Python, then the dependencies are installed with one numbered line per package."""
    fake_python(checkout / ".venv" / "bin" / "python", "3.10.12")
    (checkout / ".venv" / "leftover").write_text("from the old venv")
    python = fake_python(checkout / "bin" / "python3", "3.11.9")
    result = run_dev(checkout, python, "python", "-m", "this")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == (f"dev: rebuilding .venv: it was made by Python 3.10.12, "
                        f"this is Python 3.11.9 ({python})")
    assert lines[1] == f"dev: creating .venv with Python 3.11.9 ({python})"
    assert lines[2].startswith("dev: installing ") and "locked packages into .venv" in lines[2]
    total = lines[2].split()[2]
    assert lines[3:6] == [f"dev:   [1/{total}] aiohttp==3.14.5",
                          f"dev:   [2/{total}] grpcio==1.85.1",
                          "dev:   unpacking 2 packages into .venv"]
    assert not (checkout / ".venv" / "leftover").exists()
    assert (checkout / ".venv" / ".lock-stamp").exists()
    assert result.stdout == "ran module this\n"


def test_dev_removes_a_half_made_venv_and_says_what_is_missing(checkout: Path) -> None:
    """A Python without its venv module (Debian's python3 without python3-venv) leaves no
    half-made .venv behind, and the message names the package to install."""
    python = fake_python(checkout / "bin" / "python3", "3.11.9")
    result = run_dev(checkout, python, "up", FAKE_NO_ENSUREPIP="1")
    assert result.returncode == 1
    assert f"dev: could not create .venv with {python}" in result.stderr
    assert "apt install python3.11-venv" in result.stderr
    assert not (checkout / ".venv").exists()


def test_dev_keeps_a_venv_of_the_same_python(checkout: Path) -> None:
    """A .venv of the same major.minor (another patch release) is kept, and an installed one
    is not installed again."""
    fake_python(checkout / ".venv" / "bin" / "python", "3.11.4")
    python = fake_python(checkout / "bin" / "python3", "3.11.9")
    assert run_dev(checkout, python, "python", "-c", "pass").returncode == 0
    again = run_dev(checkout, python, "python", "-c", "pass")
    assert again.returncode == 0
    assert again.stderr == ""
    assert "echo 3.11.4" in (checkout / ".venv" / "bin" / "python").read_text()


def closed_database_url() -> str:
    return f"postgresql://brandclub:s3cret-pw@127.0.0.1:{held_closed_port()}/brandclub"


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    """The last line of stderr, after checking the process failed without a traceback."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout
    return result.stderr.strip().splitlines()[-1]


def test_migrate_with_a_closed_database_url_says_so_in_one_line() -> None:
    """`python -m tools.migrate` against a closed port: one line naming DATABASE_URL and the
    host, never the password."""
    url = closed_database_url()
    env = {**os.environ, "DATABASE_URL": url, "BRANDCLUB_ENV": "development"}
    result = subprocess.run([sys.executable, "-m", "tools.migrate"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    port = url.rsplit(":", 1)[1].split("/")[0]
    assert one_line_failure(result) == (
        f"migrate: DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:{port}/brandclub: "
        "connection refused (is PostgreSQL running there?)")


def test_dev_up_with_a_closed_database_url_says_so_in_one_line(tmp_path: Path) -> None:
    """`./dev up` (tools.devstack) with DATABASE_URL on a closed port shows its steps, then
    one line naming the variable and the host, before anything else is started."""
    url = closed_database_url()
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": "redis://127.0.0.1:1/0",
           "DATA_DIR": str(tmp_path), "BRANDCLUB_ENV": "development"}
    result = subprocess.run([sys.executable, "-m", "tools.devstack"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    port = url.rsplit(":", 1)[1].split("/")[0]
    assert f"dev: PostgreSQL: using DATABASE_URL (127.0.0.1:{port}/brandclub)" in result.stderr
    assert "Redis" not in result.stderr  # the database is checked first
    assert one_line_failure(result) == (
        f"dev: cannot start: DATABASE_URL: cannot connect to PostgreSQL at "
        f"127.0.0.1:{port}/brandclub: connection refused (is PostgreSQL running there?)")


async def test_every_unreachable_database_is_one_line_naming_the_variable(
        postgres_server_url: str) -> None:
    """The class of connection failures (closed port, unknown host, missing database, a URL
    that does not parse) each becomes DatabaseUnreachable naming the variable and where."""
    base, _, query = postgres_server_url.partition("?")
    missing_db = f"{base.rsplit('/', 1)[0]}/no_such_database?{query}"
    cases = {
        closed_database_url(): "connection refused",
        "postgresql://u:s3cret-pw@no-such-host.invalid:5432/brandclub": "unknown host name",
        missing_db: 'database "no_such_database" does not exist',
        "postgresql://u:s3cret-pw@127.0.0.1:notaport/brandclub": "",
    }
    for url, reason in cases.items():
        with pytest.raises(DatabaseUnreachable) as caught:
            conn: asyncpg.Connection = await connect(url, variable="TEST_DATABASE_URL")
            await conn.close()
        message = str(caught.value)
        assert message.startswith("TEST_DATABASE_URL: cannot connect to PostgreSQL at "), url
        assert reason in message, message
        assert "s3cret-pw" not in message and "\n" not in message


def test_migrate_names_a_malformed_lock_wait_setting() -> None:
    """A MIGRATION_LOCK_WAIT_SECONDS that is not a positive number is refused by name before
    anything connects."""
    for value in ("soon", "-1", "0"):
        env = {**os.environ, "DATABASE_URL": closed_database_url(),
               "BRANDCLUB_ENV": "development", "MIGRATION_LOCK_WAIT_SECONDS": value}
        result = subprocess.run([sys.executable, "-m", "tools.migrate"], env=env, cwd=ROOT,
                                capture_output=True, text=True, timeout=60, check=False)
        line = one_line_failure(result)
        assert line.startswith("migrate: refusing to start: MIGRATION_LOCK_WAIT_SECONDS must be"), \
            line


def test_dev_help_lists_every_sub_command() -> None:
    """`./dev` alone prints its comment header, which names every sub-command it accepts."""
    result = subprocess.run([str(ROOT / "dev")], capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith("# ") for line in lines), result.stdout
    script = (ROOT / "dev").read_text()
    commands = re.findall(r"^  ([a-z]+)\)", script, re.M)
    listed = re.findall(r"^#   \./dev ([a-z]+) ", result.stdout, re.M)
    assert commands and sorted(listed) == sorted(commands)


def test_dev_up_with_a_closed_redis_url_says_so_before_migrating(
        tmp_path: Path, db_url: str) -> None:
    """`./dev up` with REDIS_URL on a closed port stops before migrating, in one line naming
    the variable and the host, instead of waiting for services that cannot become ready."""
    port = held_closed_port()
    env = {**os.environ, "DATABASE_URL": db_url,
           "REDIS_URL": f"redis://:s3cret-pw@127.0.0.1:{port}/0",
           "DATA_DIR": str(tmp_path), "BRANDCLUB_ENV": "development"}
    result = subprocess.run([sys.executable, "-m", "tools.devstack"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert f"dev: Redis: using REDIS_URL (127.0.0.1:{port}/0)" in result.stderr
    assert "migrations:" not in result.stderr
    line = one_line_failure(result)
    assert line.startswith(
        f"dev: cannot start: REDIS_URL: cannot connect to Redis at 127.0.0.1:{port}/0: "), line
    assert line.endswith("connection refused (is Redis running there?)"), line
