"""Sweep: with PostgreSQL and Redis unreachable, no RPC of any service answers INTERNAL.

Every unary method of every gRPC service each service process serves is called with a
request whose string fields are filled in (so that most get past validation to the database).
The answer must be UNAVAILABLE (the outage, retryable) or a domain answer reached before any
I/O (INVALID_ARGUMENT, NOT_FOUND, ...), never INTERNAL or UNKNOWN; and the outage must be what
most of them report.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from libs.ports import held_closed_port
from libs.service import Compose
from libs.testing import contract_channel, running_service, service_settings
from services.benefits.main import compose as benefits_compose
from services.engagement.main import compose as engagement_compose
from services.identity.main import compose as identity_compose
from services.membership.main import compose as membership_compose
from services.messaging.main import compose as messaging_compose

COMPOSITIONS: dict[str, Compose] = {
    "identity": identity_compose,
    "membership": membership_compose,
    "benefits": benefits_compose,
    "engagement": engagement_compose,
    "messaging": messaging_compose,
}
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


def filled(descriptor: Descriptor) -> Any:
    """A request with every top-level string field set to a plausible value."""
    message = message_factory.GetMessageClass(descriptor)()
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_STRING and not field.is_repeated:
            setattr(message, field.name, f"{field.name[:3]}_outage0000000000000000")
    return message


@pytest.mark.parametrize("service", sorted(COMPOSITIONS))
async def test_no_rpc_answers_internal_while_postgres_and_redis_are_unreachable(
        service: str) -> None:
    """Every unary RPC of the service: UNAVAILABLE or an answer before I/O, never INTERNAL."""
    dead_postgres = f"postgresql://postgres@127.0.0.1:{held_closed_port()}/brandclub"
    dead_redis = f"redis://127.0.0.1:{held_closed_port()}/0"
    settings = service_settings(service, dead_postgres, dead_redis)
    codes: Counter[str] = Counter()
    wrong: list[str] = []
    async with running_service(settings, COMPOSITIONS[service]) as running, \
            contract_channel(running) as channel:
        for service_name in running.composition.service_names:
            described = descriptor_pool.Default().FindServiceByName(service_name)
            for method in described.methods:
                if method.client_streaming or method.server_streaming:
                    continue
                full = f"/{service_name}/{method.name}"
                reply_class = message_factory.GetMessageClass(method.output_type)
                call = channel.unary_unary(full, request_serializer=lambda m: m.SerializeToString(),
                                           response_deserializer=reply_class.FromString)
                try:
                    await call(filled(method.input_type), timeout=10)
                    code = grpc.StatusCode.OK
                except grpc.aio.AioRpcError as error:
                    code = error.code()
                codes[code.name] += 1
                if code in NEVER:
                    wrong.append(f"{full}: {code.name}")
    assert not wrong, "\n".join(wrong)
    assert codes["UNAVAILABLE"] > 0, codes
