"""Sending a message and reading its status, as the messaging tests do."""

from __future__ import annotations

from brandclub.messaging.v1 import messaging_service_pb2 as pb
from tests.services.messaging.conftest import Env, rid


async def send(env: Env, brand_id: str, account_id: str, template_id: str,
               **variables: str) -> pb.OutboundMessage:
    return (await env.messaging.SendMessage(pb.SendMessageRequest(
        request_id=rid(), brand_id=brand_id, account_id=account_id, template_id=template_id,
        variables=variables))).message


async def status_of(env: Env, brand_id: str, message_id: str) -> pb.OutboundMessage:
    return (await env.messaging.GetMessage(pb.GetMessageRequest(
        brand_id=brand_id, message_id=message_id))).message
