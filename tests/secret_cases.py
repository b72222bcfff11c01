"""Shared by the secrets tests: a complete, valid production environment, and the per-service
settings loaders (the composition roots' entry to every variable a service reads)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping

from libs.config import SECRETS, ConfigError
from services.benefits.settings import load_benefits_settings
from services.engagement.settings import load_engagement_settings
from services.gateway.settings import load_gateway_settings
from services.identity.settings import load_identity_settings
from services.membership.settings import load_membership_settings
from services.messaging.settings import load_messaging_settings

LOADERS: dict[str, Callable[[Mapping[str, str]], object]] = {
    "identity": load_identity_settings,
    "membership": load_membership_settings,
    "benefits": load_benefits_settings,
    "engagement": load_engagement_settings,
    "messaging": load_messaging_settings,
    "gateway": load_gateway_settings,
}

PRODUCTION_URLS = {
    "DATABASE_URL": "postgresql://brandclub:s3cret@db.internal:5432/brandclub",
    "REDIS_URL": "rediss://:s3cret@cache.internal:6380/0",
}


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def real_key(name: str, size: int = 32) -> bytes:
    """A key nobody published: derived from the variable's name."""
    return hashlib.sha256(f"production {name}".encode()).digest()[:size]


def production_env() -> dict[str, str]:
    """Every secret set to a valid, unpublished value; no BRANDCLUB_ENV (production-strict)."""
    env: dict[str, str] = {}
    for spec in SECRETS.values():
        if spec.kind == "url":
            env[spec.name] = PRODUCTION_URLS[spec.name]
        elif spec.kind == "keyring":
            env[spec.name] = f"k1:{b64(real_key(spec.name))}"
        else:
            env[spec.name] = b64(real_key(spec.name))
    return env


def secrets_read_by(service: str) -> set[str]:
    """The secrets a service's settings loader requires, found by leaving each one out of a
    complete production environment."""
    required = set()
    for name in SECRETS:
        env = production_env()
        del env[name]
        try:
            LOADERS[service](env)
        except ConfigError as exc:
            assert name in str(exc), exc
            required.add(name)
    return required
