"""The identity service's open-platform part, in-process on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from brandclub.identity.v1 import isv_service_pb2_grpc as isv_grpc
from libs.service import Composition, Resources
from libs.testing import contract_channel, running_service, service_settings
from services.identity.isv.composition import isv_part
from services.identity.settings import identity_settings


async def isv_only(resources: Resources) -> Composition:
    part = isv_part(resources.db, identity_settings(resources.settings).isv_secret_keys)
    return Composition(service_names=[part.service_name], register=part.register)


@pytest.fixture
async def isv(db_url: str, redis_url: str) -> AsyncIterator[isv_grpc.IsvServiceStub]:
    async with running_service(service_settings("identity", db_url, redis_url),
                               isv_only) as service, \
            contract_channel(service) as channel:
        yield isv_grpc.IsvServiceStub(channel)
