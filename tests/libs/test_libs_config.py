"""libs.config: defaults that run locally, and start-up errors that name the bad variable."""

from __future__ import annotations

import base64

import pytest

from libs.config import SERVICE_PORTS, ConfigError, load_settings


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_defaults_load_without_any_variable() -> None:
    """With no variables set, settings load with the documented local defaults."""
    settings = load_settings("membership", {})
    assert settings.service == "membership"
    assert settings.schema == "membership"
    assert settings.grpc_port == SERVICE_PORTS["membership"]
    assert settings.database_url.startswith("postgresql://")
    assert settings.redis_url.startswith("redis://")
    assert settings.log_level == "info"
    assert settings.traces_exporter == "none"
    assert settings.drain_seconds == 10.0
    assert settings.health_interval_seconds == 2.0
    assert settings.address_of("benefits") == f"127.0.0.1:{SERVICE_PORTS['benefits']}"
    assert set(settings.addresses) == set(SERVICE_PORTS)
    [(kid, secret)] = settings.token_keys.items()
    assert kid == "dev"
    assert len(secret) >= 16


def test_valid_values_override_defaults() -> None:
    """Valid values replace the defaults, normalised (case of choices, order of keys kept)."""
    signing, older = b"s" * 32, b"o" * 24
    settings = load_settings("gateway", {
        "GRPC_PORT": "6001",
        "LOG_LEVEL": "DEBUG",
        "DATABASE_URL": "postgres://u@db:5432/x",
        "REDIS_URL": "rediss://cache:6380/1",
        "DRAIN_SECONDS": "2.5",
        "IDENTITY_ADDR": "identity:50051",
        "TOKEN_SIGNING_KEYS": f"k2:{b64(signing)}, k1:{b64(older)}",
    })
    assert settings.grpc_port == 6001
    assert settings.log_level == "debug"
    assert settings.database_url == "postgres://u@db:5432/x"
    assert settings.redis_url == "rediss://cache:6380/1"
    assert settings.drain_seconds == 2.5
    assert settings.address_of("identity") == "identity:50051"
    assert list(settings.token_keys.items()) == [("k2", signing), ("k1", older)]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GRPC_PORT", "abc"),
        ("GRPC_PORT", "70000"),
        ("GRPC_PORT", "-1"),
        ("HTTP_PORT", "8o8o"),
        ("LOG_LEVEL", "loud"),
        ("OTEL_TRACES_EXPORTER", "jaeger"),
        ("DATABASE_URL", "mysql://x"),
        ("DATABASE_URL", "just-a-host"),
        ("REDIS_URL", "http://cache:6379"),
        ("DRAIN_SECONDS", "soon"),
        ("DRAIN_SECONDS", "-1"),
        ("HEALTH_INTERVAL_SECONDS", "0"),
        ("MEMBERSHIP_ADDR", "   "),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
        ("TOKEN_SIGNING_KEYS", "no-separator"),
        ("TOKEN_SIGNING_KEYS", f":{b64(b'k' * 32)}"),
        ("TOKEN_SIGNING_KEYS", "k1:%%%not-base64%%%"),
        ("TOKEN_SIGNING_KEYS", f"k1:{b64(b'short')}"),
        ("TOKEN_SIGNING_KEYS", f"k1:{b64(b'k' * 32)},broken"),
    ],
)
def test_invalid_value_raises_config_error_naming_the_variable(name: str, value: str) -> None:
    """An invalid value stops loading with a ConfigError whose message names the variable."""
    with pytest.raises(ConfigError) as caught:
        load_settings("membership", {name: value})
    assert name in str(caught.value)


def test_signing_key_errors_do_not_echo_the_secret() -> None:
    """A malformed signing key is reported by its id, never by its secret material."""
    secret = b64(b"top-secret")  # valid base64, but too short
    with pytest.raises(ConfigError) as caught:
        load_settings("membership", {"TOKEN_SIGNING_KEYS": f"k9:{secret}"})
    message = str(caught.value)
    assert "TOKEN_SIGNING_KEYS" in message
    assert "k9" in message
    assert secret not in message
