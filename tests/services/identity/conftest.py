"""An in-process identity service against the test PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from brandclub.identity.v1 import identity_service_pb2_grpc as pb_grpc
from libs.testing import running_service, service_settings
from services.identity.main import compose


@pytest.fixture
async def identity(db_url: str, redis_url: str) -> AsyncIterator[pb_grpc.IdentityServiceStub]:
    async with running_service(service_settings("identity", db_url, redis_url), compose) as svc:
        channel = grpc.aio.insecure_channel(svc.address)
        yield pb_grpc.IdentityServiceStub(channel)
        await channel.close()
