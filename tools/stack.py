"""The whole suite as real processes: embedded (or external) PostgreSQL and Redis, migrations,
six services, a demo seed. Used by `./dev up`, the end-to-end tests and `./dev bench`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import grpc
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.exceptions import RedisError

from brandclub.identity.v1 import identity_service_pb2 as identity_pb
from brandclub.identity.v1 import identity_service_pb2_grpc as identity_grpc
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from libs.config import SERVICE_PORTS
from libs.db import connect, describe_location
from libs.embedded import EmbeddedPostgres, EmbeddedRedis, start_postgres, start_redis
from libs.ports import wait_for_ports
from libs.testing import ContractChannel
from libs.tls import issue_pki
from tools import local_secrets
from tools.migrate import migrate_all

ROOT = Path(__file__).resolve().parent.parent
SERVICES = list(SERVICE_PORTS)
DATABASE = "brandclub"


class ServiceDidNotStart(RuntimeError):
    """A service exited or stayed NOT_SERVING during start-up; its own log says why."""


class RedisUnreachable(RuntimeError):
    """REDIS_URL does not answer; the message names the variable and the host, in one line."""


def redis_location(url: str) -> str:
    """`host:port/db` of a Redis URL (or the socket path), without credentials."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    try:
        port = parts.port or 6379
    except ValueError:
        return "an unparsable URL"
    return f"{parts.hostname or 'localhost'}:{port}{parts.path or '/0'}"


async def check_redis(url: str, timeout_seconds: float = 5.0) -> None:
    """Raise RedisUnreachable unless the Redis at `url` answers PING: the services would
    otherwise start, stay NOT_SERVING and leave ./dev up waiting for them."""
    client = aioredis.Redis.from_url(url, socket_connect_timeout=timeout_seconds,
                                     socket_timeout=timeout_seconds)
    try:
        await client.ping()
    except (RedisError, OSError, ValueError) as exc:
        reason = _redis_failure(exc)
        raise RedisUnreachable(f"REDIS_URL: cannot connect to Redis at {redis_location(url)}: "
                               f"{reason}") from None
    finally:
        await client.aclose()


def _redis_failure(exc: BaseException) -> str:
    """The cause in words: redis-py wraps the socket error in its own ConnectionError."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (is Redis running there?)"
        if isinstance(cause, socket.gaierror):
            return "unknown host name"
        cause = cause.__cause__ or cause.__context__
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


@dataclass
class Seed:
    brand_id: str
    shop_id: str
    account_id: str
    shopper_token: str


@dataclass
class Stack:
    data_dir: Path
    database_url: str | None = None
    redis_url: str | None = None
    ports: dict[str, int] = field(default_factory=lambda: dict(SERVICE_PORTS))
    http_port: int = 8080
    log_dir: Path | None = None  # None: services write to this terminal
    extra_env: dict[str, str] = field(default_factory=dict)
    # Ports 0: each service binds a free port itself and reports it (libs/ports.py); the
    # services start one after the other so that each is given the addresses of those before.
    dynamic_ports: bool = False
    # Told each step of start-up as it begins (`./dev up` prints them); silent by default.
    progress: Callable[[str], None] = field(default=lambda _step: None)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _postgres: EmbeddedPostgres | None = None
    _redis: EmbeddedRedis | None = None
    _logs: list[IO[bytes]] = field(default_factory=list)

    @classmethod
    def on_free_ports(cls, data_dir: Path, **kwargs: object) -> Stack:
        """A stack that cannot collide with another one running on this machine: every
        service binds port 0 and reports the port it got, so no port is chosen by one process
        and bound by another (another process could take it in between)."""
        ports = dict.fromkeys(SERVICES, 0)
        return cls(data_dir, ports=ports, http_port=0, dynamic_ports=True,
                   **kwargs)  # type: ignore[arg-type]

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def address(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}"

    @property
    def pki_dir(self) -> Path:
        """The local CA and one certificate per caller: `<data dir>/tls/<name>/`."""
        return self.data_dir / "tls"

    def channel(self, service: str) -> ContractChannel:
        """A mutual-TLS channel to `service` that calls each method as a caller the contract
        allows (the local stack's own tools: health wait, seed, bench)."""
        return ContractChannel(self.address(service), peer=service, pki=self.pki_dir)

    async def start_infrastructure(self) -> None:
        self.progress(f"certificates: the local CA and one per service in {self.pki_dir}")
        issue_pki(self.pki_dir)  # kept between runs; only missing certificates are issued
        if self.database_url is None:
            self.progress(f"PostgreSQL: starting the embedded server ({self.data_dir}/postgres)")
            self._postgres = start_postgres(self.data_dir / "postgres")
            admin = await connect(self._postgres.url("postgres"))
            try:
                if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1",
                                            DATABASE):
                    await admin.execute(f"CREATE DATABASE {DATABASE}")
            finally:
                await admin.close()
            self.database_url = self._postgres.url(DATABASE)
        else:
            where = describe_location(self.database_url)
            self.progress(f"PostgreSQL: using DATABASE_URL ({where})")
            await (await connect(self.database_url)).close()  # unreachable: one clear line
        if self.redis_url is None:
            self.progress("Redis: starting the embedded server")
            self._redis = start_redis(self.data_dir / "redis")
            self.redis_url = self._redis.url
        else:
            self.progress(f"Redis: using REDIS_URL ({redis_location(self.redis_url)})")
            await check_redis(self.redis_url)
        self.progress("migrations: bringing every service's schema up to date")
        for service, versions in (await migrate_all(self.database_url)).items():
            self.progress(f"  {service}: " + (f"{len(versions)} applied" if versions
                                               else "up to date"))

    def service_env(self, service: str) -> dict[str, str]:
        assert self.database_url and self.redis_url
        env = dict(os.environ)
        # Locally nothing routes around a stopping service: a short drain keeps Ctrl-C and
        # restarts quick (the environment or extra_env may ask for longer ones).
        env.setdefault("DRAIN_SECONDS", "0.5")
        env.setdefault("SHUTDOWN_GRACE_SECONDS", "2")
        # This installation's own keys, never the published development ones (a secret set
        # in the environment or in extra_env wins).
        for name, value in local_secrets.load_or_create(self.data_dir).items():
            env.setdefault(name, value)
        env.update({
            # A local suite (loopback listeners, relaxed checks); its keys are its own (above).
            "BRANDCLUB_ENV": "development",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "GRPC_PORT": str(self.ports[service]),
            # Mutual TLS with this service's certificate; the plaintext health-only and
            # metrics ports are for the kubelet and Prometheus, not needed locally: any free
            # port the kernel gives (a fixed one above 32768 can be taken by any outgoing
            # connection's ephemeral port), reported in the port file.
            "TLS_DIR": str(self.pki_dir / service),
            "GRPC_HEALTH_PORT": "0",
            "METRICS_PORT": "0",
            "HTTP_PORT": str(self.http_port),
            "PORT_FILE": str(self.port_file(service)),
            "OTEL_SERVICE_NAME": service,
            "PYTHONUNBUFFERED": "1",
            "PYTHONFAULTHANDLER": "1",
            **{f"{name.upper()}_ADDR": self.address(name) for name in SERVICES},
            **self.extra_env,
        })
        return env

    def operator_env(self) -> dict[str, str]:
        """What `./dev admin` sees against this stack: the addresses, Redis, and the operator
        certificate (the CLI calls as `operator`)."""
        return {**self.service_env("gateway"), "TLS_DIR": str(self.pki_dir / "operator")}

    def launch(self, service: str) -> None:
        output: IO[bytes] | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = open(self.log_dir / f"{service}.log", "ab")  # noqa: SIM115 - closed in stop
            self._logs.append(output)
        self.processes[service] = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}"], cwd=ROOT,
            env=self.service_env(service), stdout=output, stderr=subprocess.STDOUT,
        )

    async def wait_serving(self, within_seconds: float = 60.0) -> None:
        """Wait until every service's health check answers SERVING."""
        deadline = time.monotonic() + within_seconds
        for service in SERVICES:
            async with self.channel(service) as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                while True:
                    process = self.processes.get(service)
                    if process is not None and process.poll() is not None:
                        raise ServiceDidNotStart(
                            f"{service} exited with code {process.returncode} while starting "
                            "(its log above says why)")
                    try:
                        reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                        if reply.status == health_pb2.HealthCheckResponse.SERVING:
                            break
                    except grpc.aio.AioRpcError:
                        pass
                    if time.monotonic() > deadline:
                        raise ServiceDidNotStart(
                            f"{service} was not SERVING within {within_seconds:.0f} s (its log "
                            "above says why)")
                    await asyncio.sleep(0.1)

    def port_file(self, service: str) -> Path:
        return self.data_dir / "run" / f"{service}.ports"

    async def wait_ports(self, service: str) -> None:
        """Learn the ports a service launched with port 0 bound (it reports them itself)."""
        ports = await wait_for_ports(self.port_file(service), self.processes[service])
        self.ports[service] = ports["grpc"]
        if "http" in ports:
            self.http_port = ports["http"]

    async def start(self) -> None:
        await self.start_infrastructure()
        self.progress(f"services: starting {', '.join(SERVICES)}")
        for service in SERVICES:
            # A relaunch (restart) keeps the port the service reported the first time.
            self.launch(service)
            if self.dynamic_ports:
                await self.wait_ports(service)
        self.progress("services: waiting until every one reports SERVING")
        await self.wait_serving()

    async def seed(self, marketplace_account_id: str = "demo-shopper") -> Seed:
        """A demo brand, shop and shopper; idempotent, so re-running finds the same ones."""
        self.progress("seed: the demo brand, shop and shopper")
        async with self.channel("identity") as identity_channel, \
                self.channel("membership") as membership_channel:
            identity = identity_grpc.IdentityServiceStub(identity_channel)
            membership = membership_grpc.MembershipServiceStub(membership_channel)
            account = (await identity.EnsureAccount(identity_pb.EnsureAccountRequest(
                request_id=f"seed:account:{marketplace_account_id}",
                marketplace_account_id=marketplace_account_id), timeout=10)).account
            brand = (await membership.CreateBrand(membership_pb.CreateBrandRequest(
                request_id="seed:brand:demo", display_name="Demo Brand",
                mode=membership_pb.PROGRAM_MODE_NON_CONNECTED, time_zone="Asia/Shanghai"),
                timeout=10)).brand
            shop = (await membership.CreateShop(membership_pb.CreateShopRequest(
                request_id="seed:shop:demo", brand_id=brand.brand_id,
                display_name="Demo Flagship Store"), timeout=10)).shop
            token = (await identity.IssueShopperToken(identity_pb.IssueShopperTokenRequest(
                account_id=account.account_id), timeout=10)).token
        return Seed(brand.brand_id, shop.shop_id, account.account_id, token)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every service, wait for their drain, then stop Redis and PostgreSQL."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                # faulthandler (PYTHONFAULTHANDLER) writes every thread's stack to the log.
                process.send_signal(signal.SIGABRT)
                try:
                    process.wait(2)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for log_file in self._logs:
            log_file.close()
        if self._redis is not None:
            self._redis.stop()
        if self._postgres is not None:
            self._postgres.stop()
