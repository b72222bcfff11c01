"""An in-process identity service against the test PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from brandclub.identity.v1 import identity_service_pb2_grpc as pb_grpc
from libs.testing import contract_channel, running_service, service_settings
from services.identity.main import compose


@pytest.fixture
async def identity(db_url: str, redis_url: str) -> AsyncIterator[pb_grpc.IdentityServiceStub]:
    async with running_service(service_settings("identity", db_url, redis_url), compose) as svc:
        channel = contract_channel(svc)
        yield pb_grpc.IdentityServiceStub(channel)
        await channel.close()
