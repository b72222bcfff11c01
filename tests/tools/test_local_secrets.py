"""tools.local_secrets: a local suite runs on keys of its own, never the published ones."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from libs.config import PUBLISHED_DEV_KEYS, SECRETS, ConfigError, Env
from tools import local_secrets
from tools.stack import Stack


def production_reads(values: dict[str, str]) -> None:
    """Read every key-type secret as a production service would (no development mode)."""
    env = Env(values)
    for name, spec in SECRETS.items():
        if spec.kind == "keyring":
            env.secret_keyring(name)
        elif spec.kind == "base64":
            env.secret(name)


def test_a_data_directory_gets_random_keys_a_production_check_accepts(tmp_path: Path) -> None:
    """Every key-type secret is made, random, valid even outside development mode, stored
    owner-only, and the same on the next run."""
    values = local_secrets.load_or_create(tmp_path)
    assert set(values) == {n for n, s in SECRETS.items() if s.kind in ("keyring", "base64")}
    production_reads(values)
    mode = stat.S_IMODE((tmp_path / local_secrets.FILE_NAME).stat().st_mode)
    assert mode == 0o600
    assert local_secrets.load_or_create(tmp_path) == values
    assert local_secrets.load_or_create(tmp_path / "other") != values


def test_a_secret_declared_later_gets_its_own_key_and_the_others_stay(tmp_path: Path) -> None:
    """A data directory made before a secret existed gets a random key for it on the next run
    (never the published value), and keeps every key it already had."""
    values = local_secrets.load_or_create(tmp_path)
    newest = list(values)[-1]
    older = {name: value for name, value in values.items() if name != newest}
    (tmp_path / local_secrets.FILE_NAME).write_text(json.dumps(older))
    again = local_secrets.load_or_create(tmp_path)
    assert {name: again[name] for name in older} == older
    assert again[newest] not in (values[newest], SECRETS[newest].dev_value)
    production_reads(again)
    assert local_secrets.load_or_create(tmp_path) == again


def test_an_old_data_directory_still_decrypts_but_never_signs_with_published_keys(
        tmp_path: Path) -> None:
    """A data directory made before it had its own keys keeps the published vault and ISV
    sealing keys as second, decrypt-only keys; signing keys are never published ones."""
    (tmp_path / "postgres").mkdir()
    values = local_secrets.load_or_create(tmp_path)
    for name in ("PHONE_VAULT_KEYS", "ISV_SECRET_KEYS"):
        first, second = values[name].split(",")
        assert first.startswith("local:") and second == SECRETS[name].dev_value
    for name in ("TOKEN_SIGNING_KEYS", "PHONE_MATCH_PEPPER", "MARKETPLACE_WEBHOOK_SECRET",
                 "MESSAGING_CREDENTIALS_KEY"):
        encoded = values[name].removeprefix("local:")
        assert base64.b64decode(encoded) not in PUBLISHED_DEV_KEYS
    with pytest.raises(ConfigError, match="PHONE_VAULT_KEYS"):
        production_reads(values)  # outside development mode even a second published key fails


def test_the_local_stack_hands_its_services_its_own_keys(tmp_path: Path) -> None:
    """Every service of a local stack gets the data directory's keys, none published; a
    secret given explicitly wins."""
    stack = Stack(tmp_path, database_url="postgresql://x@127.0.0.1/db",
                  redis_url="redis://127.0.0.1:1/0",
                  extra_env={"MARKETPLACE_WEBHOOK_SECRET": "Zm9yLXRoaXMtdGVzdC1vbmx5LTEyMzQ="})
    stored = local_secrets.load_or_create(tmp_path)
    for service in ("identity", "gateway", "messaging"):
        env = stack.service_env(service)
        assert env["TOKEN_SIGNING_KEYS"] == stored["TOKEN_SIGNING_KEYS"]
        assert env["MARKETPLACE_WEBHOOK_SECRET"] == "Zm9yLXRoaXMtdGVzdC1vbmx5LTEyMzQ="
        for name, spec in SECRETS.items():
            if spec.kind in ("keyring", "base64"):
                assert env[name] != spec.dev_value, name
