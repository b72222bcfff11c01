"""The composition roots, not only the settings loaders, refuse to start outside development
mode when a secret their service reads is missing or published: swept over every key secret
of every service."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import grpc
import pytest

from brandclub.identity.v1 import identity_service_pb2 as identity_pb
from brandclub.identity.v1 import identity_service_pb2_grpc as identity_grpc
from libs.config import SECRETS, ConfigError, Env
from libs.service import Compose
from libs.testing import channel, running_service, service_settings
from services.benefits.main import compose as benefits_compose
from services.engagement.main import compose as engagement_compose
from services.gateway.api.marketplace import PATH, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from services.gateway.main import start_gateway
from services.identity.domain.tokens import Kind, TokenCodec
from services.identity.main import compose as identity_compose
from services.membership.main import compose as membership_compose
from services.messaging.main import compose as messaging_compose
from tests.secret_cases import LOADERS, production_env, secrets_read_by

COMPOSE: dict[str, Compose] = {"identity": identity_compose, "membership": membership_compose,
                               "benefits": benefits_compose, "engagement": engagement_compose,
                               "messaging": messaging_compose}
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
    """Outside development mode the service does not start, and the error names the secret
    (a secret every service reads, such as PAGE_TOKEN_KEYS, is refused by the common settings
    already, before the composition root runs)."""
    keys = {k: v for k, v in production_env().items() if SECRETS[k].kind != "url"}
    if published:
        keys[name] = SECRETS[name].dev_value
    else:
        del keys[name]
    with pytest.raises(ConfigError, match=name):
        settings = service_settings(service, db_url, redis_url, BRANDCLUB_ENV="production",
                                    **keys)
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


async def test_a_token_forged_with_the_published_key_is_refused_in_production(
        db_url: str, redis_url: str) -> None:
    """The reported forgery: a merchant token signed with the development key published in the
    repository is refused by identity running outside development mode with its real keys."""
    keys = {k: v for k, v in production_env().items() if SECRETS[k].kind != "url"}
    settings = service_settings("identity", db_url, redis_url, BRANDCLUB_ENV="production", **keys)
    published = Env({"BRANDCLUB_ENV": "development"}).secret_keyring("TOKEN_SIGNING_KEYS")
    forged, _ = TokenCodec(published).issue(Kind.MERCHANT, "mus_forged", now=datetime.now(UTC),
                                            ttl=timedelta(hours=1), brand_id="brd_victim")
    async with running_service(settings, identity_compose) as running, \
            channel(running, "gateway") as chan:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await identity_grpc.IdentityServiceStub(chan).VerifyToken(
                identity_pb.VerifyTokenRequest(token=forged))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_marketplace_batch_signed_with_the_published_secret_is_refused_in_production(
        db_url: str, redis_url: str) -> None:
    """The reported fake order: a facts batch signed with the published development secret is
    401 at a gateway running outside development mode with its real secret; the same batch
    signed with the real secret passes the signature check."""
    keys = {k: v for k, v in production_env().items() if SECRETS[k].kind != "url"}
    settings = service_settings("gateway", db_url, redis_url, BRANDCLUB_ENV="production", **keys)
    published = Env({"BRANDCLUB_ENV": "development"}).secret("MARKETPLACE_WEBHOOK_SECRET")
    real = Env(keys).secret("MARKETPLACE_WEBHOOK_SECRET")
    body = json.dumps({"events": []}).encode()
    stamp = str(int(time.time()))
    gateway = await start_gateway(settings, http_port=0, grpc_port=0, bind="127.0.0.1")
    try:
        async with aiohttp.ClientSession(base_url=gateway.base_url) as http:
            statuses = []
            for secret in (published, real):
                async with http.post(PATH, data=body, headers={
                        "Content-Type": "application/json", TIMESTAMP_HEADER: stamp,
                        SIGNATURE_HEADER: sign(secret, stamp, body)}) as response:
                    statuses.append(response.status)
    finally:
        await gateway.stop(0.2)
    assert statuses[0] == 401
    assert statuses[1] != 401
