"""Settings from environment variables.

Every setting has a default that runs the suite locally; an invalid value stops the process at
start-up with an error that names the variable, instead of failing later somewhere obscure.

Secrets are different: each one is declared once in `SECRETS` (its format, minimum length and the
development value published in this repository) and read only through `Env.secret`,
`Env.secret_keyring` or `Env.secret_url`. The development value is used only in development mode
(`BRANDCLUB_ENV=development`, set by `./dev`, the local stack and the test helpers); anywhere
else a missing secret, one that is too short, or one equal to any published development value
stops the process with an error naming the variable. docs/deploy.md lists the same secrets.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from libs.redis import CLUSTER_SCHEMES
from libs.tls import TlsFiles

SERVICE_PORTS: dict[str, int] = {
    "identity": 50051,
    "membership": 50052,
    "benefits": 50053,
    "engagement": 50054,
    "messaging": 50055,
    "gateway": 50056,
}

# The variable that selects development mode, and its one accepted value. Anything else
# (unset included) is production-strict.
MODE_VARIABLE = "BRANDCLUB_ENV"
DEVELOPMENT = "development"


def is_development(source: Mapping[str, str]) -> bool:
    return source.get(MODE_VARIABLE, "").strip().lower() == DEVELOPMENT


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@dataclass(frozen=True)
class SecretSpec:
    """One secret the code reads: how it looks, and the development value this repository
    publishes for it (usable only in development mode, refused everywhere else)."""

    name: str
    about: str
    kind: str  # "keyring" ("kid:base64,..."), "base64" (one key) or "url" (with credentials)
    dev_value: str
    generate: str
    min_bytes: int = 0  # keyring/base64: the shortest key accepted, in decoded bytes
    key_sizes: tuple[int, ...] = ()  # exact decoded sizes allowed (AES keys); () = any


_AES = (16, 24, 32)
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/brandclub"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

# Every secret any Brandclub process reads. docs/deploy.md (Secrets) has one row per entry and
# the prod overlay references each one; tests/libs/test_libs_config.py keeps the three equal.
SECRETS: dict[str, SecretSpec] = {spec.name: spec for spec in (
    SecretSpec("DATABASE_URL", "PostgreSQL connection URL, with its password", "url",
               DEFAULT_DATABASE_URL,
               "postgresql://USER:PASSWORD@HOST:5432/brandclub?sslmode=verify-full"),
    SecretSpec("REDIS_URL", "Redis connection URL, with its password", "url",
               DEFAULT_REDIS_URL, "rediss://:PASSWORD@HOST:6380/0"),
    SecretSpec("TOKEN_SIGNING_KEYS", "HMAC keys that sign and verify shopper and merchant "
               "tokens", "keyring", f"dev:{_b64(b'brandclub-local-development-key!')}",
               'k2026a:$(openssl rand -base64 32)', min_bytes=32),
    SecretSpec("PHONE_VAULT_KEYS", "AES-GCM keys that encrypt stored phone numbers", "keyring",
               f"dev:{_b64(b'brandclub-dev-phone-vault-key-32')}",
               'v2026a:$(openssl rand -base64 32)', min_bytes=16, key_sizes=_AES),
    SecretSpec("PHONE_MATCH_PEPPER", "root of every brand's phone-matching HMAC key",
               "base64", _b64(b"brandclub-dev-phone-match-pepper"),
               "$(openssl rand -base64 32)", min_bytes=32),
    SecretSpec("ISV_SECRET_KEYS", "AES-GCM keys that seal ISV app secrets", "keyring",
               f"dev:{_b64(b'brandclub-dev-isv-secret-sealing')}",
               'i2026a:$(openssl rand -base64 32)', min_bytes=16, key_sizes=_AES),
    SecretSpec("MESSAGING_CREDENTIALS_KEY", "AES-GCM key that seals brands' SMS/WeChat "
               "provider credentials", "base64", _b64(b"brandclub-dev-credentials-key-32"),
               "$(openssl rand -base64 32)", min_bytes=16, key_sizes=_AES),
    SecretSpec("MARKETPLACE_WEBHOOK_SECRET", "HMAC secret shared with the marketplace that "
               "signs its facts webhook", "base64",
               _b64(b"brandclub-dev-marketplace-webhook-secret"),
               "$(openssl rand -base64 32), given to the marketplace too", min_bytes=16),
    SecretSpec("PAGE_TOKEN_KEYS", "HMAC keys that sign and verify page tokens (next_page_token)",
               "keyring", f"dev:{_b64(b'brandclub-dev-page-token-signing')}",
               'p2026a:$(openssl rand -base64 32)', min_bytes=32),
)}


def _decoded_dev_keys() -> frozenset[bytes]:
    keys: set[bytes] = set()
    for spec in SECRETS.values():
        if spec.kind == "base64":
            keys.add(base64.b64decode(spec.dev_value))
        elif spec.kind == "keyring":
            keys.update(base64.b64decode(part.partition(":")[2])
                        for part in spec.dev_value.split(","))
    return frozenset(keys)


# Every published development key, decoded: a production key equal to any of them is refused,
# whichever secret it was published for.
PUBLISHED_DEV_KEYS = _decoded_dev_keys()


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Env:
    """Typed reads of a mapping of environment variables."""

    def __init__(self, source: Mapping[str, str] | None = None) -> None:
        self._source = os.environ if source is None else source
        self.development = is_development(self._source)

    def snapshot(self) -> Mapping[str, str]:
        """A read-only copy of the variables, for a service's own settings loader."""
        return MappingProxyType(dict(self._source))

    def text(self, name: str, default: str) -> str:
        value = self._source.get(name, default).strip()
        if not value:
            raise ConfigError(f"{name} must not be empty")
        return value

    def optional_text(self, name: str) -> str:
        """The value, or "" when the variable is unset or blank."""
        return self._source.get(name, "").strip()

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

    def flag(self, name: str, default: bool) -> bool:
        """A yes/no variable: true/false (also 1/0, yes/no, on/off), any case."""
        raw = self._source.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in ("true", "1", "yes", "on"):
            return True
        if raw in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

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

    # --- secrets: only names declared in SECRETS ------------------------------------------

    def _secret_raw(self, name: str, kind: str) -> tuple[SecretSpec, str]:
        spec = SECRETS.get(name)
        if spec is None or spec.kind != kind:
            raise LookupError(f"{name} is not declared in libs.config.SECRETS as a {kind}")
        raw = self._source.get(name, "").strip()
        if raw:
            return spec, raw
        if self.development:
            return spec, spec.dev_value
        raise ConfigError(f"{name} is not set: a secret has no default outside development "
                          f"mode ({MODE_VARIABLE}={DEVELOPMENT}); see docs/deploy.md, Secrets")

    def _checked_key(self, spec: SecretSpec, label: str, encoded: str) -> bytes:
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{label} is not valid base64") from None
        if len(key) < spec.min_bytes:
            raise ConfigError(f"{label} is too short: it must decode to at least "
                              f"{spec.min_bytes} bytes")
        if spec.key_sizes and len(key) not in spec.key_sizes:
            raise ConfigError(f"{label} must decode to "
                              f"{', '.join(map(str, spec.key_sizes))} bytes")
        if not self.development and key in PUBLISHED_DEV_KEYS:
            raise ConfigError(f"{label} is a development key published in the repository; "
                              f"generate a real one: {spec.generate}")
        return key

    def secret(self, name: str) -> bytes:
        """A base64 secret declared in SECRETS, decoded and checked."""
        spec, raw = self._secret_raw(name, "base64")
        return self._checked_key(spec, name, raw)

    def secret_keyring(self, name: str) -> dict[str, bytes]:
        """A keyring secret declared in SECRETS: "kid:base64secret,kid2:..." -> {kid: secret},
        in order (the first signs or encrypts, all verify or decrypt)."""
        spec, raw = self._secret_raw(name, "keyring")
        keys: dict[str, bytes] = {}
        for part in raw.split(","):
            kid, sep, encoded = part.strip().partition(":")
            if not sep or not kid:
                raise ConfigError(f"{name} must look like 'kid:base64secret,...'")
            if kid in keys:
                raise ConfigError(f"{name}: key id {kid!r} appears twice")
            keys[kid] = self._checked_key(spec, f"{name}: key {kid!r}", encoded)
        return keys

    def secret_url(self, name: str, schemes: tuple[str, ...]) -> str:
        """A URL with credentials declared in SECRETS (DATABASE_URL, REDIS_URL)."""
        spec, raw = self._secret_raw(name, "url")
        scheme = raw.split("://", 1)[0] if "://" in raw else ""
        if scheme not in schemes:
            raise ConfigError(
                f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)}"
            )
        if not self.development and raw == spec.dev_value:
            raise ConfigError(f"{name} is the development default; set the real URL "
                              f"({spec.generate})")
        return raw


@dataclass(frozen=True)
class OtlpSettings:
    """Where spans go and how the exporter authenticates the collector (the OpenTelemetry
    specification's variable names). Plaintext only when OTEL_EXPORTER_OTLP_INSECURE is true,
    which is the default in development mode alone."""

    endpoint: str = "127.0.0.1:4317"
    insecure: bool = False
    certificate_file: str = ""  # OTEL_EXPORTER_OTLP_CERTIFICATE: CA that signs the collector
    client_key_file: str = ""  # OTEL_EXPORTER_OTLP_CLIENT_KEY: for a collector asking mTLS
    client_certificate_file: str = ""  # OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE


@dataclass(frozen=True)
class ConnectionSettings:
    """gRPC connection lifetimes (docs/operations.md, Connections and rollouts).

    A server closes every connection after `max_connection_age_seconds` (gRPC adds +-10%
    jitter) and gives calls on it `max_connection_age_grace_seconds` to finish, so clients
    reconnect and their new connections reach pods the autoscaler added. Keepalive pings find
    a dead peer (a node gone, a NAT entry dropped) within time + timeout."""

    max_connection_age_seconds: float = 120.0
    # Longer than the default deadline of a call (30 s), so no call is cut by the rotation.
    max_connection_age_grace_seconds: float = 35.0
    keepalive_time_seconds: float = 30.0
    keepalive_timeout_seconds: float = 10.0


@dataclass(frozen=True)
class Settings:
    """What every service reads at start-up."""

    service: str
    grpc_port: int
    database_url: str
    redis_url: str
    log_level: str
    traces_exporter: str
    drain_seconds: float
    health_interval_seconds: float
    addresses: dict[str, str] = field(default_factory=dict)
    http_port: int = 8080
    # BRANDCLUB_ENV=development: published development secrets are accepted.
    development: bool = False
    # The variables these settings were read from, so that the service's own settings loader
    # (services/<name>/settings.py) reads the same source; nothing else reads it.
    environment: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    # idempotency_keys and processed_events are kept this long (libs/retention.py).
    dedup_retention_days: float = 7.0
    # Set by whoever starts the process with port 0: where it reports its ports (libs/ports.py).
    port_file: str = ""
    # gRPC transport (libs/tls.py): where to listen, this process's certificate files, and a
    # plaintext port that serves only the health service (for the kubelet's probe).
    grpc_listen_host: str = "[::]"
    # Where the gateway's HTTP server listens: loopback in development mode, every interface
    # otherwise (HTTP_LISTEN_HOST), like GRPC_LISTEN_HOST.
    http_listen_host: str = "0.0.0.0"
    grpc_health_port: int = 0
    tls_files: TlsFiles = field(default_factory=lambda: TlsFiles("", "", ""))
    # After the drain window, calls in flight get this long before the server stops.
    shutdown_grace_seconds: float = 5.0
    # The OTLP exporter's endpoint and transport security (libs/tracing.py).
    otlp: OtlpSettings = field(default_factory=OtlpSettings)
    # Connection age and keepalive of gRPC servers and client channels.
    connections: ConnectionSettings = field(default_factory=ConnectionSettings)
    # Plaintext HTTP listener serving only GET /metrics (Prometheus); 0 picks a free port.
    metrics_port: int = 0
    # PAGE_TOKEN_KEYS (services with a database: they issue page tokens; libs/paging.py).
    page_token_keys: Mapping[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def schema(self) -> str:
        """Each service keeps its tables in its own PostgreSQL schema."""
        return self.service

    def address_of(self, service: str) -> str:
        return self.addresses[service]


def port_offset(source: Mapping[str, str]) -> int:
    """PORT_OFFSET moves every port of a local suite at once (`./dev up`, `./dev admin`), to
    run a second suite beside a first one."""
    return Env(source).integer("PORT_OFFSET", 0, maximum=10_000)


def load_settings(service: str, source: Mapping[str, str] | None = None, *,
                  database: bool = True) -> Settings:
    """The settings every service shares. `database=False` for a process that opens no
    database (the gateway): DATABASE_URL is then neither required nor read."""
    env = Env(source)
    addresses = {
        name: env.text(f"{name.upper()}_ADDR", f"127.0.0.1:{port}")
        for name, port in SERVICE_PORTS.items()
    }
    return Settings(
        service=service,
        grpc_port=env.integer("GRPC_PORT", SERVICE_PORTS[service], maximum=65535),
        database_url=env.secret_url("DATABASE_URL", ("postgresql", "postgres"))
        if database else "",
        redis_url=env.secret_url("REDIS_URL", ("redis", "rediss", "unix", *CLUSTER_SCHEMES)),
        page_token_keys=env.secret_keyring("PAGE_TOKEN_KEYS") if database else {},
        log_level=env.choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
        traces_exporter=env.choice("OTEL_TRACES_EXPORTER", "none", ("none", "otlp", "console")),
        drain_seconds=env.number("DRAIN_SECONDS", 10.0),
        health_interval_seconds=env.number("HEALTH_INTERVAL_SECONDS", 2.0, minimum=0.05),
        addresses=addresses,
        development=env.development,
        environment=env.snapshot(),
        http_port=env.integer("HTTP_PORT", 8080, maximum=65535),
        dedup_retention_days=env.number("DEDUP_RETENTION_DAYS", 7.0, minimum=1.0),
        port_file=env.optional_text("PORT_FILE"),
        grpc_listen_host=grpc_listen_host(env, source),
        http_listen_host=env.text("HTTP_LISTEN_HOST",
                                  "127.0.0.1" if env.development else "0.0.0.0"),
        grpc_health_port=grpc_health_port(env, service),
        tls_files=tls_files(source),
        shutdown_grace_seconds=env.number("SHUTDOWN_GRACE_SECONDS", 5.0),
        otlp=otlp_settings(env, env.choice("OTEL_TRACES_EXPORTER", "none",
                                           ("none", "otlp", "console"))),
        connections=connection_settings(env),
        metrics_port=metrics_port(env, service),
    )


def otlp_settings(env: Env, exporter: str) -> OtlpSettings:
    """OTEL_EXPORTER_OTLP_ENDPOINT / _INSECURE / _CERTIFICATE / _CLIENT_KEY /
    _CLIENT_CERTIFICATE. Spans carry member ids and request paths: outside development they
    travel over TLS unless the operator says otherwise. An endpoint's scheme must agree with
    the setting (http:// is plaintext, https:// is TLS; a bare host:port follows the setting),
    so that no one reads "http://" and gets TLS, or the reverse."""
    endpoint = env.text("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4317")
    insecure = env.flag("OTEL_EXPORTER_OTLP_INSECURE", env.development)
    scheme = endpoint.split("://", 1)[0].lower() if "://" in endpoint else ""
    if exporter == "otlp" and (scheme, insecure) in (("https", True), ("http", False)):
        raise ConfigError(
            f"OTEL_EXPORTER_OTLP_ENDPOINT is {scheme}:// but OTEL_EXPORTER_OTLP_INSECURE is "
            f"{str(insecure).lower()}: use https:// (or host:port) for TLS, or http:// with "
            "OTEL_EXPORTER_OTLP_INSECURE=true for plaintext")
    client_key = env.optional_text("OTEL_EXPORTER_OTLP_CLIENT_KEY")
    client_certificate = env.optional_text("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")
    if bool(client_key) != bool(client_certificate):
        raise ConfigError("OTEL_EXPORTER_OTLP_CLIENT_KEY and "
                          "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE go together: set both or none")
    return OtlpSettings(endpoint=endpoint, insecure=insecure,
                        certificate_file=env.optional_text("OTEL_EXPORTER_OTLP_CERTIFICATE"),
                        client_key_file=client_key, client_certificate_file=client_certificate)


def connection_settings(env: Env) -> ConnectionSettings:
    """GRPC_MAX_CONNECTION_AGE_SECONDS, GRPC_MAX_CONNECTION_AGE_GRACE_SECONDS,
    GRPC_KEEPALIVE_TIME_SECONDS, GRPC_KEEPALIVE_TIMEOUT_SECONDS."""
    defaults = ConnectionSettings()
    return ConnectionSettings(
        max_connection_age_seconds=env.number("GRPC_MAX_CONNECTION_AGE_SECONDS",
                                              defaults.max_connection_age_seconds, minimum=1.0),
        max_connection_age_grace_seconds=env.number(
            "GRPC_MAX_CONNECTION_AGE_GRACE_SECONDS", defaults.max_connection_age_grace_seconds),
        keepalive_time_seconds=env.number("GRPC_KEEPALIVE_TIME_SECONDS",
                                          defaults.keepalive_time_seconds, minimum=10.0),
        keepalive_timeout_seconds=env.number("GRPC_KEEPALIVE_TIMEOUT_SECONDS",
                                             defaults.keepalive_timeout_seconds, minimum=1.0),
    )


def metrics_port(env: Env, service: str) -> int:
    """METRICS_PORT: plaintext HTTP, GET /metrics only; by default GRPC_PORT + 2000."""
    grpc_port = env.integer("GRPC_PORT", SERVICE_PORTS[service], maximum=65535)
    return env.integer("METRICS_PORT", grpc_port + 2000 if grpc_port else 0, maximum=65535)


def grpc_listen_host(env: Env, source: Mapping[str, str] | None) -> str:
    """GRPC_LISTEN_HOST; by default loopback only in development mode, every interface else."""
    return env.text("GRPC_LISTEN_HOST", "127.0.0.1" if env.development else "[::]")


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
