"""libs.ports and the embedded Redis: no port is chosen by one process and bound by another.

A served port is bound (port 0) by the serving process and reported back through a file;
a port that must refuse connections is held bound for as long as it is used; redis-server,
which cannot report a port, is retried on another one when its port was taken meanwhile. The
sweep at the end keeps the bind-release-hand-on pattern from coming back.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from libs import embedded
from libs.ports import closed_port, held_closed_port, read_ports, report_ports, wait_for_ports
from tools.bench_echo import METHOD as ECHO_METHOD

ROOT = Path(__file__).resolve().parents[2]


def test_reported_ports_are_read_back_for_that_process_only(tmp_path: Path) -> None:
    """The starter reads the ports its own child reported; a file left by an earlier process
    (another pid) does not count."""
    path = tmp_path / "run" / "svc.ports"
    assert read_ports(path, os.getpid()) is None
    report_ports(str(path), grpc=50123, http=8123)
    assert read_ports(path, os.getpid()) == {"grpc": 50123, "http": 8123}
    assert read_ports(path, os.getpid() + 1) is None
    report_ports("", grpc=1)  # no file named: nothing is written anywhere


async def test_a_served_port_is_bound_by_the_server_and_reported(tmp_path: Path) -> None:
    """A server started with port 0 binds a port itself and reports it; the port serves."""
    path = tmp_path / "echo.ports"
    server = subprocess.Popen([sys.executable, "-m", "tools.bench_echo", "--port", "0",
                               "--port-file", str(path)], cwd=ROOT)
    try:
        port = (await wait_for_ports(path, server, within_seconds=30))["grpc"]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            echo = channel.unary_unary(ECHO_METHOD)
            assert await echo(b"ping", timeout=10) == b"ping"
    finally:
        server.terminate()
        server.wait(10)


async def test_waiting_for_a_process_that_exits_fails_at_once(tmp_path: Path) -> None:
    """A child that dies before reporting (it could not bind, say) is an error, not a hang."""
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(RuntimeError, match="exited with code 3"):
        await wait_for_ports(tmp_path / "never.ports", child, within_seconds=30)


@pytest.mark.parametrize("holder", ["context", "held"])
def test_a_closed_port_refuses_and_cannot_be_taken(holder: str) -> None:
    """A closed port refuses connections, and no other socket can bind it while it is held,
    not even one asking for SO_REUSEADDR."""
    with closed_port() as scoped:
        port = scoped if holder == "context" else held_closed_port()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        with socket.socket() as other:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with pytest.raises(OSError):
                other.bind(("127.0.0.1", port))


def test_redis_is_retried_on_another_port_when_its_port_was_taken(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the port chosen for redis-server is taken before it binds, another is tried; the
    returned server is really ours (its pid answers on the port)."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        choices = iter([taken])
        real = embedded._unused_port
        monkeypatch.setattr(embedded, "_unused_port", lambda: next(choices, None) or real())
        redis = embedded.start_redis(tmp_path / "redis", persist=False)
        try:
            assert redis.port != taken
            assert embedded._redis_pid(redis.port) == redis.process.pid
        finally:
            redis.stop()


def test_redis_on_an_explicit_taken_port_fails_naming_it(tmp_path: Path) -> None:
    """An explicitly requested port that is taken is an error, not a silent other server."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        with pytest.raises(RuntimeError, match=str(taken)):
            embedded.start_redis(tmp_path / "redis", taken, persist=False)


_HAND_ON = re.compile(r"\.bind\(\(\s*\"127\.0\.0\.1\",\s*0\s*\)\)")


def test_no_code_hands_a_bound_port_on() -> None:
    """Outside libs/ports.py (and redis's retried choice in libs/embedded.py) nothing binds
    port 0 only to read its number, and nothing offers a `free_port` helper."""
    allowed = {ROOT / "libs" / "ports.py", ROOT / "libs" / "embedded.py", Path(__file__)}
    offenders = []
    for folder in ("libs", "services", "tools", "tests"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            if path not in allowed and (_HAND_ON.search(text) or "free_port(" in text):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
