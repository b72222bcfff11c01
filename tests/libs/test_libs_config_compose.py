"""The composition roots, not only the settings loaders, refuse to start outside development
mode when a secret their service reads is missing or published: swept over every key secret
of every service."""

from __future__ import annotations

import pytest

from libs.config import SECRETS, ConfigError
from libs.service import Compose
from libs.testing import running_service, service_settings
from services.gateway.main import start_gateway
from services.identity.main import compose as identity_compose
from services.messaging.main import compose as messaging_compose
from tests.secret_cases import LOADERS, production_env, secrets_read_by

COMPOSE: dict[str, Compose] = {"identity": identity_compose, "messaging": messaging_compose}
CASES = [(service, name) for service in sorted(LOADERS) for name in sorted(
    secrets_read_by(service)) if SECRETS[name].kind != "url"]


def test_the_sweep_covers_every_key_secret() -> None:
    """Every key secret in the registry is read by some service, so it appears in CASES."""
    assert {name for _, name in CASES} == {n for n, s in SECRETS.items() if s.kind != "url"}
    assert {service for service, _ in CASES} <= set(COMPOSE) | {"gateway"}


@pytest.mark.parametrize("published", [False, True], ids=["missing", "published"])
@pytest.mark.parametrize(("service", "name"), CASES)
async def test_composition_refuses_a_missing_or_published_secret(
        service: str, name: str, published: bool, db_url: str, redis_url: str) -> None:
    """Outside development mode the service does not start, and the error names the secret."""
    keys = {k: v for k, v in production_env().items() if SECRETS[k].kind != "url"}
    if published:
        keys[name] = SECRETS[name].dev_value
    else:
        del keys[name]
    settings = service_settings(service, db_url, redis_url, BRANDCLUB_ENV="production", **keys)
    with pytest.raises(ConfigError, match=name):
        if service == "gateway":
            await start_gateway(settings, http_port=0, grpc_port=0, bind="127.0.0.1")
        else:
            async with running_service(settings, COMPOSE[service]):
                pass


@pytest.mark.parametrize("service", sorted(COMPOSE))
async def test_composition_starts_with_real_secrets_outside_development(
        service: str, db_url: str, redis_url: str) -> None:
    """With every secret set to an unpublished value, the service starts in production mode."""
    keys = {k: v for k, v in production_env().items() if SECRETS[k].kind != "url"}
    settings = service_settings(service, db_url, redis_url, BRANDCLUB_ENV="production", **keys)
    assert not settings.development
    async with running_service(settings, COMPOSE[service]) as running:
        assert running.host.port
