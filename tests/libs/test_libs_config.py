"""libs.config: defaults that run locally, start-up errors that name the bad variable, and
secrets that fail closed outside development mode."""

from __future__ import annotations

import ast
import base64
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from libs.config import (
    PUBLISHED_DEV_KEYS,
    SECRETS,
    SERVICE_PORTS,
    ConfigError,
    Env,
    SecretSpec,
    load_settings,
)
from tests.secret_cases import LOADERS, b64, production_env, real_key, secrets_read_by

ROOT = Path(__file__).resolve().parents[2]
DEV = {"BRANDCLUB_ENV": "development"}


def test_defaults_load_in_development_mode() -> None:
    """In development mode, with nothing else set, settings load with the local defaults."""
    settings = load_settings("membership", DEV)
    assert settings.development
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


@pytest.mark.parametrize("mode", ["", "production", "dev", "Development-ish"])
def test_anything_but_development_is_production_strict(mode: str) -> None:
    """Only BRANDCLUB_ENV=development relaxes secrets; unset or any other value refuses the
    missing database URL."""
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings("membership", {"BRANDCLUB_ENV": mode} if mode else {})


def test_valid_values_override_defaults() -> None:
    """Valid values replace the defaults, normalised (case of choices, order of keys kept)."""
    settings = load_settings("gateway", {
        **production_env(),
        "GRPC_PORT": "6001",
        "LOG_LEVEL": "DEBUG",
        "DATABASE_URL": "postgres://u:p@db:5432/x",
        "REDIS_URL": "rediss://cache:6380/1",
        "DRAIN_SECONDS": "2.5",
        "IDENTITY_ADDR": "identity:50051",
    })
    assert not settings.development
    assert settings.grpc_port == 6001
    assert settings.log_level == "debug"
    assert settings.database_url == "postgres://u:p@db:5432/x"
    assert settings.redis_url == "rediss://cache:6380/1"
    assert settings.drain_seconds == 2.5
    assert settings.address_of("identity") == "identity:50051"


def test_gateway_settings_need_no_database() -> None:
    """A process that opens no database (the gateway) does not require DATABASE_URL."""
    env = production_env()
    del env["DATABASE_URL"]
    assert load_settings("gateway", env, database=False).database_url == ""


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
    ],
)
def test_invalid_value_raises_config_error_naming_the_variable(name: str, value: str) -> None:
    """An invalid value stops loading with a ConfigError whose message names the variable,
    in development mode as well."""
    with pytest.raises(ConfigError) as caught:
        load_settings("membership", {**DEV, name: value})
    assert name in str(caught.value)


# --- every secret, every way it can be wrong -------------------------------------------------


def read(spec: SecretSpec, source: dict[str, str]) -> object:
    env = Env(source)
    if spec.kind == "keyring":
        return env.secret_keyring(spec.name)
    if spec.kind == "base64":
        return env.secret(spec.name)
    return env.secret_url(spec.name, ("postgresql", "postgres", "redis", "rediss", "unix"))


def encoded(spec: SecretSpec, key: bytes) -> str:
    return f"k1:{b64(key)}" if spec.kind == "keyring" else b64(key)


KEY_SECRETS = [spec for spec in SECRETS.values() if spec.kind != "url"]
ALL = list(SECRETS.values())


@pytest.mark.parametrize("spec", ALL, ids=lambda s: s.name)
def test_missing_secret_is_refused_outside_development(spec: SecretSpec) -> None:
    """Unset (or blank) outside development mode: refused, naming the variable."""
    for source in ({}, {spec.name: "  "}, {"BRANDCLUB_ENV": "production"}):
        with pytest.raises(ConfigError, match=spec.name):
            read(spec, source)


@pytest.mark.parametrize("spec", ALL, ids=lambda s: s.name)
def test_published_development_value_is_refused_outside_development(spec: SecretSpec) -> None:
    """The value published in the repository is refused outside development mode."""
    with pytest.raises(ConfigError, match=spec.name) as caught:
        read(spec, {spec.name: spec.dev_value})
    assert "development" in str(caught.value)


@pytest.mark.parametrize("spec", KEY_SECRETS, ids=lambda s: s.name)
def test_any_published_development_key_is_refused(spec: SecretSpec) -> None:
    """A key published for any secret (another one's included, under any key id, anywhere in
    a keyring) is refused outside development mode."""
    for published in PUBLISHED_DEV_KEYS:
        if len(published) < spec.min_bytes or (spec.key_sizes
                                               and len(published) not in spec.key_sizes):
            continue
        value = (f"k1:{b64(real_key(spec.name))},old:{b64(published)}"
                 if spec.kind == "keyring" else b64(published))
        with pytest.raises(ConfigError, match=spec.name):
            read(spec, {spec.name: value})


@pytest.mark.parametrize("spec", KEY_SECRETS, ids=lambda s: s.name)
@pytest.mark.parametrize("mode", [{}, DEV], ids=["production", "development"])
def test_too_short_secret_is_refused(spec: SecretSpec, mode: dict[str, str]) -> None:
    """A key shorter than the minimum is refused in every mode, naming the variable."""
    short = real_key(spec.name)[: spec.min_bytes - 1]
    with pytest.raises(ConfigError, match=spec.name) as caught:
        read(spec, {**mode, spec.name: encoded(spec, short)})
    assert "short" in str(caught.value) or "bytes" in str(caught.value)


@pytest.mark.parametrize("spec", KEY_SECRETS, ids=lambda s: s.name)
def test_malformed_secret_is_refused(spec: SecretSpec) -> None:
    """Not base64 (or, for a keyring, not kid:base64 or a repeated kid): refused."""
    values = ["%%% not base64 %%%"]
    if spec.kind == "keyring":
        key = b64(real_key(spec.name))
        values += ["no-separator", f":{key}", f"k1:{key},broken", f"k1:{key},k1:{key}"]
    for value in values:
        with pytest.raises(ConfigError, match=spec.name):
            read(spec, {**DEV, spec.name: value})


@pytest.mark.parametrize("spec", ALL, ids=lambda s: s.name)
def test_valid_secret_is_accepted(spec: SecretSpec) -> None:
    """A well-formed value nobody published is accepted outside development mode."""
    value = production_env()[spec.name]
    result = read(spec, {spec.name: value})
    if spec.kind == "keyring":
        assert result == {"k1": real_key(spec.name)}
    elif spec.kind == "base64":
        assert result == real_key(spec.name)
    else:
        assert result == value


@pytest.mark.parametrize("spec", ALL, ids=lambda s: s.name)
def test_development_mode_accepts_the_published_value(spec: SecretSpec) -> None:
    """In development mode the published value is the default and is accepted when given."""
    assert read(spec, DEV) == read(spec, {**DEV, spec.name: spec.dev_value})


def test_keyring_keeps_key_order() -> None:
    """The first key of a keyring signs or encrypts: the order given is kept."""
    first, second = real_key("first"), real_key("second")
    keys = Env({"TOKEN_SIGNING_KEYS": f"k2:{b64(first)}, k1:{b64(second)}"}
               ).secret_keyring("TOKEN_SIGNING_KEYS")
    assert list(keys.items()) == [("k2", first), ("k1", second)]


def test_secret_errors_do_not_echo_the_secret() -> None:
    """A bad key is reported by its id, never by its secret material."""
    secret = b64(b"top-secret")  # valid base64, but too short
    with pytest.raises(ConfigError) as caught:
        Env({"TOKEN_SIGNING_KEYS": f"k9:{secret}"}).secret_keyring("TOKEN_SIGNING_KEYS")
    message = str(caught.value)
    assert "TOKEN_SIGNING_KEYS" in message
    assert "k9" in message
    assert secret not in message


def test_only_declared_secrets_can_be_read() -> None:
    """Reading a name that is not in SECRETS, or as the wrong kind, is a programming error."""
    with pytest.raises(LookupError):
        Env(DEV).secret("SOME_NEW_SECRET")
    with pytest.raises(LookupError):
        Env(DEV).secret("TOKEN_SIGNING_KEYS")  # a keyring, not one key


def test_published_development_values_are_valid() -> None:
    """Each published development value passes its own checks in development mode (so the
    local suite starts), and every published key is in PUBLISHED_DEV_KEYS."""
    for spec in SECRETS.values():
        read(spec, {**DEV, spec.name: spec.dev_value})
        if spec.kind == "base64":
            assert base64.b64decode(spec.dev_value) in PUBLISHED_DEV_KEYS


# --- every service's settings loader ------------------------------------------------------


@pytest.mark.parametrize("service", sorted(LOADERS))
def test_service_settings_load_in_production_with_every_secret_set(service: str) -> None:
    """Each service's settings load outside development mode from real secrets."""
    LOADERS[service](production_env())


@pytest.mark.parametrize("service", sorted(LOADERS))
def test_service_settings_load_in_development_with_nothing_set(service: str) -> None:
    """Each service's settings load in development mode with no secret set at all."""
    LOADERS[service](DEV)


@pytest.mark.parametrize("service", sorted(LOADERS))
def test_service_settings_refuse_each_bad_secret(service: str) -> None:
    """For every secret the service reads: missing, too short or published -> its settings
    loader refuses, naming the variable."""
    read_by = secrets_read_by(service)
    assert read_by >= ({"REDIS_URL"} if service == "gateway" else {"DATABASE_URL", "REDIS_URL"})
    for name in read_by:
        spec = SECRETS[name]
        bad_values = [spec.dev_value]
        if spec.min_bytes:
            bad_values.append(encoded(spec, real_key(name)[: spec.min_bytes - 1]))
        for value in bad_values:
            with pytest.raises(ConfigError, match=name):
                LOADERS[service]({**production_env(), name: value})


@pytest.mark.parametrize("service", sorted(LOADERS))
def test_service_process_refuses_to_start_without_its_secrets(service: str) -> None:
    """`python -m services.<name>` outside development mode and without its secrets exits at
    once with an error naming the first missing variable, before serving anything."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
           "GRPC_PORT": "0", "HTTP_PORT": "0"}
    done = subprocess.run([sys.executable, "-m", f"services.{service}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    first = "REDIS_URL" if service == "gateway" else "DATABASE_URL"
    assert f"{service}: refusing to start: {first} is not set" in done.stderr, done.stderr


# --- no secret is read around the registry ------------------------------------------------

SOURCE_DIRS = ("libs", "services", "tools")
# Modules that may touch os.environ: the registry itself, and development tooling that reads
# where the embedded servers live or how to offset ports (never a secret, except that
# `./dev up` passes external DATABASE_URL / REDIS_URL through to the services it starts, and
# the backup tool hands its environment, with PGPASSWORD, to pg_dump / pg_restore).
ENVIRON_ALLOWED = {"libs/config.py", "libs/embedded.py", "tools/stack.py", "tools/devstack.py",
                   "tools/codegen.py", "tools/admin.py", "tools/backup.py"}
DEV_TOOLING_SECRET_READS = {"tools/devstack.py": {"DATABASE_URL", "REDIS_URL"}}
# Where `Env(...)` may be built: the registry, each service's settings module, the migrator and
# the local-suite tooling (PORT_OFFSET and the like; its secret reads are swept below too).
ENV_ALLOWED = re.compile(r"^(libs/config\.py|services/[a-z_]+/settings\.py|"
                         r"tools/(migrate|devstack|admin|backup)\.py)$")
SECRET_METHODS = {"secret", "secret_keyring", "secret_url"}
PLAIN_METHODS = {"text", "integer", "number", "choice", "url"}
SECRET_LOOKING = re.compile(r"KEY|SECRET|PEPPER|PASSWORD|TOKEN|CREDENTIAL|_URL$")


def python_modules() -> list[tuple[str, ast.Module]]:
    modules = []
    for directory in SOURCE_DIRS:
        for path in sorted((ROOT / directory).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            modules.append((relative, ast.parse(path.read_text(), filename=relative)))
    return modules


def first_literal(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(
            call.args[0].value, str):
        return call.args[0].value
    return None


def sweep(check: Callable[[str, ast.AST], str | None]) -> list[str]:
    problems = []
    for relative, tree in python_modules():
        for node in ast.walk(tree):
            problem = check(relative, node)
            if problem:
                problems.append(f"{relative}:{getattr(node, 'lineno', '?')}: {problem}")
    return problems


def test_no_module_reads_the_process_environment_outside_the_allowed_ones() -> None:
    """os.environ / os.getenv appear only in libs.config and development tooling; services read
    every variable through their settings module."""
    def check(relative: str, node: ast.AST) -> str | None:
        touches = (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")) or (
            isinstance(node, ast.Name) and node.id in ("environ", "getenv"))
        if touches and relative not in ENVIRON_ALLOWED:
            return "reads the process environment"
        return None
    assert sweep(check) == []


def test_settings_are_read_only_in_settings_modules() -> None:
    """Env(...) is built only in libs.config, services/<name>/settings.py and the migrator."""
    def check(relative: str, node: ast.AST) -> str | None:
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "Env" and not ENV_ALLOWED.match(relative)):
            return "builds Env outside a settings module"
        return None
    assert sweep(check) == []


def test_every_secret_read_goes_through_the_registry() -> None:
    """Every secret-looking variable is read with Env.secret* and is declared in SECRETS; the
    development tooling's pass-through reads are the listed exceptions."""
    def check(relative: str, node: ast.AST) -> str | None:
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            return None
        method, name = node.func.attr, first_literal(node)
        if method in SECRET_METHODS and relative != "libs/config.py":
            if name is None:
                return f"{method}() with a computed name"
            if name not in SECRETS:
                return f"{method}({name!r}) is not declared in libs.config.SECRETS"
        if name is None or not re.fullmatch(r"[A-Z][A-Z0-9_]+", name):
            return None
        if name.endswith(("_FILE", "_DIR")):
            return None  # a path to mounted Secret files (TLS), in docs/deploy.md's table
        secretish = name in SECRETS or SECRET_LOOKING.search(name)
        if not secretish or name in DEV_TOOLING_SECRET_READS.get(relative, set()):
            return None
        if method in PLAIN_METHODS or method in ("get", "getenv"):
            return f"reads {name} without Env.secret*"
        return None
    assert sweep(check) == []


def test_published_development_values_live_only_in_the_registry() -> None:
    """No module outside libs.config carries a published development key (as base64 text or
    as raw bytes): a fallback to one cannot come back unnoticed."""
    published_text = {spec.dev_value for spec in SECRETS.values() if spec.kind != "url"}
    published_text |= {b64(key) for key in PUBLISHED_DEV_KEYS}

    def check(relative: str, node: ast.AST) -> str | None:
        if relative == "libs/config.py" or not isinstance(node, ast.Constant):
            return None
        value = node.value
        raw = value if isinstance(value, bytes) else (
            value.encode() if isinstance(value, str) else None)
        if raw is None:
            return None
        if raw in PUBLISHED_DEV_KEYS or (isinstance(value, str) and any(
                text in value for text in published_text)):
            return "carries a published development key"
        return None
    assert sweep(check) == []
