"""Settings from environment variables.

Every setting has a default that runs the suite locally; an invalid value stops the process at
start-up with an error that names the variable, instead of failing later somewhere obscure.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from libs.tls import TlsFiles

SERVICE_PORTS: dict[str, int] = {
    "identity": 50051,
    "membership": 50052,
    "benefits": 50053,
    "engagement": 50054,
    "messaging": 50055,
    "gateway": 50056,
}

# Development keys: only used when the variable is unset, and refused when CI/production says so.
_DEV_KEY = base64.b64encode(b"brandclub-local-development-key!").decode()


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Env:
    """Typed reads of a mapping of environment variables."""

    def __init__(self, source: Mapping[str, str] | None = None) -> None:
        self._source = os.environ if source is None else source

    def text(self, name: str, default: str) -> str:
        value = self._source.get(name, default).strip()
        if not value:
            raise ConfigError(f"{name} must not be empty")
        return value

    def integer(self, name: str, default: int, *, minimum: int = 0, maximum: int = 2**31) -> int:
        raw = self._source.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {value}")
        return value

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        raw = self._source.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def url(self, name: str, default: str, schemes: tuple[str, ...]) -> str:
        value = self.text(name, default)
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in schemes:
            raise ConfigError(
                f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)}"
            )
        return value

    def keyring(self, name: str, default: str) -> dict[str, bytes]:
        """Parse "kid:base64secret,kid2:..." into {kid: secret}; the first kid signs."""
        raw = self.text(name, default)
        keys: dict[str, bytes] = {}
        for part in raw.split(","):
            kid, sep, encoded = part.strip().partition(":")
            if not sep or not kid:
                raise ConfigError(f"{name} must look like 'kid:base64secret,...'")
            try:
                secret = base64.b64decode(encoded, validate=True)
            except ValueError:
                raise ConfigError(f"{name}: key {kid!r} is not valid base64") from None
            if len(secret) < 16:
                raise ConfigError(f"{name}: key {kid!r} must be at least 16 bytes")
            if kid in keys:
                raise ConfigError(f"{name}: key id {kid!r} appears twice")
            keys[kid] = secret
        return keys


@dataclass(frozen=True)
class Settings:
    """What every service reads at start-up."""

    service: str
    grpc_port: int
    database_url: str
    redis_url: str
    log_level: str
    traces_exporter: str
    otlp_endpoint: str
    drain_seconds: float
    health_interval_seconds: float
    addresses: dict[str, str] = field(default_factory=dict)
    token_keys: dict[str, bytes] = field(default_factory=dict)
    http_port: int = 8080
    # idempotency_keys and processed_events are kept this long (libs/retention.py).
    dedup_retention_days: float = 7.0
    # gRPC transport (libs/tls.py): where to listen, this process's certificate files, and a
    # plaintext port that serves only the health service (for the kubelet's probe).
    grpc_listen_host: str = "[::]"
    grpc_health_port: int = 0
    tls_files: TlsFiles = field(default_factory=lambda: TlsFiles("", "", ""))
    # After the drain window, calls in flight get this long before the server stops.
    shutdown_grace_seconds: float = 5.0

    @property
    def schema(self) -> str:
        """Each service keeps its tables in its own PostgreSQL schema."""
        return self.service

    def address_of(self, service: str) -> str:
        return self.addresses[service]


def load_settings(service: str, source: Mapping[str, str] | None = None) -> Settings:
    env = Env(source)
    addresses = {
        name: env.text(f"{name.upper()}_ADDR", f"127.0.0.1:{port}")
        for name, port in SERVICE_PORTS.items()
    }
    return Settings(
        service=service,
        grpc_port=env.integer("GRPC_PORT", SERVICE_PORTS[service], maximum=65535),
        database_url=env.url(
            "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/brandclub",
            ("postgresql", "postgres"),
        ),
        redis_url=env.url("REDIS_URL", "redis://127.0.0.1:6379/0", ("redis", "rediss", "unix")),
        log_level=env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
        traces_exporter=env.choice("OTEL_TRACES_EXPORTER", "none", ("none", "otlp", "console")),
        otlp_endpoint=env.text("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
        drain_seconds=env.number("DRAIN_SECONDS", 10.0),
        health_interval_seconds=env.number("HEALTH_INTERVAL_SECONDS", 2.0, minimum=0.05),
        addresses=addresses,
        token_keys=env.keyring("TOKEN_SIGNING_KEYS", f"dev:{_DEV_KEY}"),
        http_port=env.integer("HTTP_PORT", 8080, maximum=65535),
        dedup_retention_days=env.number("DEDUP_RETENTION_DAYS", 7.0, minimum=1.0),
        grpc_listen_host=grpc_listen_host(env, source),
        grpc_health_port=grpc_health_port(env, service),
        tls_files=tls_files(source),
        shutdown_grace_seconds=env.number("SHUTDOWN_GRACE_SECONDS", 5.0),
    )


def grpc_listen_host(env: Env, source: Mapping[str, str] | None) -> str:
    """GRPC_LISTEN_HOST; by default loopback only in development mode, every interface else."""
    mode = (os.environ if source is None else source).get("BRANDCLUB_ENV", "")
    development = mode.strip().lower() == "development"
    return env.text("GRPC_LISTEN_HOST", "127.0.0.1" if development else "[::]")


def grpc_health_port(env: Env, service: str) -> int:
    """GRPC_HEALTH_PORT: plaintext, health service only; by default GRPC_PORT + 1000."""
    grpc_port = env.integer("GRPC_PORT", SERVICE_PORTS[service], maximum=65535)
    return env.integer("GRPC_HEALTH_PORT", grpc_port + 1000 if grpc_port else 0,
                       maximum=65535)


def tls_files(source: Mapping[str, str] | None) -> TlsFiles:
    """TLS_DIR (ca.crt, tls.crt, tls.key), or TLS_CA_FILE / TLS_CERT_FILE / TLS_KEY_FILE.

    The files are read when the server starts (libs.tls.load_identity names a missing one).
    """
    values = os.environ if source is None else source
    directory = values.get("TLS_DIR", "").strip()
    defaults = TlsFiles.in_dir(directory) if directory else TlsFiles("", "", "")
    return TlsFiles(values.get("TLS_CA_FILE", "").strip() or defaults.ca_file,
                    values.get("TLS_CERT_FILE", "").strip() or defaults.cert_file,
                    values.get("TLS_KEY_FILE", "").strip() or defaults.key_file)
