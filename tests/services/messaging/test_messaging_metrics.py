"""brandclub_messages_total moves when a message is delivered or suppressed, by reason."""

from __future__ import annotations

from prometheus_client import REGISTRY

from brandclub.messaging.v1 import messaging_service_pb2 as pb
from tests.services.messaging.conftest import Env, rid
from tests.services.messaging.messages import send, status_of


def messages(outcome: str, reason: str) -> float:
    value = REGISTRY.get_sample_value("brandclub_messages_total",
                                      {"outcome": outcome, "reason": reason})
    return 0.0 if value is None else value


async def test_delivered_and_suppressed_messages_are_counted_by_reason(env: Env) -> None:
    """One inbox message is delivered (no reason); after an opt-out the next is suppressed
    and counted under OPTED_OUT."""
    brand = await env.brand()
    template = await env.inbox_template(brand, body="{{offer}}")
    delivered, opted_out = messages("delivered", ""), messages("suppressed", "OPTED_OUT")
    first = await send(env, brand, "acc_1", template.template_id, offer="10% off")
    await env.dispatch()
    assert (await status_of(env, brand, first.message_id)).status == \
        pb.MESSAGE_STATUS_DELIVERED
    assert messages("delivered", "") == delivered + 1
    await env.messaging.SetConsent(pb.SetConsentRequest(
        request_id=rid(), brand_id=brand, account_id="acc_1", channel=pb.CHANNEL_INBOX,
        purpose=pb.PURPOSE_MARKETING, granted=False, source="member_centre"))
    second = await send(env, brand, "acc_1", template.template_id, offer="20% off")
    await env.dispatch()
    after = await status_of(env, brand, second.message_id)
    assert after.status == pb.MESSAGE_STATUS_SUPPRESSED
    assert messages("suppressed", "OPTED_OUT") == opted_out + 1
    assert messages("delivered", "") == delivered + 1
