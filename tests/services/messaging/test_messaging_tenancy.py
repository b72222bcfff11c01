"""Every brand-scoped rpc of messaging, called as another brand, finds and changes nothing.

Brand A has a member with a message in the box, a consent, a template, a campaign, a journey
and a policy. Every MessagingService rpc whose request names a brand and one of A's objects
(template, message, campaign, journey) is sent for brand B with A's ids: each must answer
NOT_FOUND. The member's box, unread count and consents read for B are empty, B's lists are
empty, B's policy is not A's, and marking A's message read through B leaves it unread.
`test_every_brand_scoped_rpc_is_swept` keeps the sweep complete as rpcs are added.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor

from brandclub.messaging.v1 import messaging_service_pb2 as pb
from libs import contract
from libs.testing import contract_channel
from tests.services.messaging.conftest import Env, rid

SERVICE = "brandclub.messaging.v1.MessagingService"
ID_FIELDS = {"template_id", "message_id", "campaign_id", "journey_id"}
# Brand-scoped rpcs without one of those ids: each has its own case below, or creates in the
# brand it names and reads nothing (the Create*/Set*/Configure* writes), or checks a signature
# over the receipts' own brand (RecordSignedDeliveryReceipts).
OWN_CASES = {"ListInboxMessages", "GetInboxUnreadCount", "MarkInboxMessagesRead",
             "ListConsents", "GetMessagingPolicy", "RecordDeliveryReceipt"}
WRITES_IN_OWN_BRAND = {"ConfigureChannel", "SetConsent", "RecordSignedDeliveryReceipts"}


def methods() -> list[MethodDescriptor]:
    return list(contract.services()[SERVICE].methods)


def fields(method: MethodDescriptor) -> set[str]:
    return {f.name for f in method.input_type.fields}


def test_every_brand_scoped_rpc_is_swept() -> None:
    """Each rpc naming a brand is swept generically (it names an object id), is a brand-only
    list, or is listed with its own case."""
    scoped = {m.name for m in methods() if "brand_id" in fields(m)}
    generic = {m.name for m in methods() if "brand_id" in fields(m) and ID_FIELDS & fields(m)}
    lists = {name for name in scoped - generic if name.startswith("List")} - OWN_CASES
    assert scoped - generic - lists == OWN_CASES | WRITES_IN_OWN_BRAND
    assert len(generic) >= 10


async def test_another_brand_reaches_none_of_a_brands_objects(env: Env) -> None:
    """Brand B, given brand A's ids, is answered NOT_FOUND by every rpc, sees an empty box,
    no consents, empty lists and its own policy, and changes nothing of A's."""
    brand_a, brand_b = await env.brand(), await env.brand()
    (member,) = await env.add_members(brand_a, 1)
    template = await env.inbox_template(brand_a, purpose=pb.PURPOSE_SERVICE,
                                        body="Hello from {{brand_name}}", custom=())
    message = (await env.messaging.SendMessage(pb.SendMessageRequest(
        request_id=rid(), brand_id=brand_a, account_id=member,
        template_id=template.template_id))).message
    await env.dispatch()
    await env.messaging.SetConsent(pb.SetConsentRequest(
        request_id=rid(), brand_id=brand_a, account_id=member, channel=pb.CHANNEL_SMS,
        purpose=pb.PURPOSE_MARKETING, granted=True, source="storefront"))
    await env.messaging.SetMessagingPolicy(pb.SetMessagingPolicyRequest(
        request_id=rid(), policy=pb.MessagingPolicy(brand_id=brand_a, daily_cap=3)))
    snapshot = await env.snapshot_all(brand_a)
    campaign = (await env.messaging.CreateCampaign(pb.CreateCampaignRequest(
        request_id=rid(), campaign=pb.Campaign(
            brand_id=brand_a, name="spring", snapshot_id=snapshot.snapshot_id,
            template_id=template.template_id, channel=pb.CHANNEL_INBOX)))).campaign
    journey = (await env.messaging.CreateJourney(pb.CreateJourneyRequest(
        request_id=rid(), journey=pb.Journey(
            brand_id=brand_a, name="welcome", trigger=pb.JOURNEY_TRIGGER_CARD_OPENED,
            steps=[pb.JourneyStep(step_id="pause", kind=pb.JOURNEY_STEP_KIND_WAIT,
                                  wait_minutes=5)])))).journey
    ids = {"template_id": template.template_id, "message_id": message.message_id,
           "campaign_id": campaign.campaign_id, "journey_id": journey.journey_id}
    before = await env.sql("SELECT message_id, status FROM messaging.outbound_messages "
                           "WHERE brand_id = $1 ORDER BY message_id", brand_a)

    leaks: list[str] = []
    channel = contract_channel(env.service)
    try:
        for method in methods():
            reply_class = message_factory.GetMessageClass(method.output_type)
            call = channel.unary_unary(contract.full_method_name(method),
                                       request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=reply_class.FromString)
            if "brand_id" not in fields(method):
                continue
            request: Any = message_factory.GetMessageClass(method.input_type)()
            for name, value in {"request_id": rid(), "brand_id": brand_b, "account_id": member,
                                **ids}.items():
                if name in fields(method):
                    setattr(request, name, value)
            if ID_FIELDS & fields(method):
                try:
                    await call(request, timeout=10)
                    leaks.append(f"{method.name} with A's ids: OK")
                except grpc.aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.NOT_FOUND:
                        leaks.append(f"{method.name}: {error.code().name} {error.details()}")
            elif method.name.startswith("List"):
                reply = await call(request, timeout=10)
                shown = [f.name for f, _ in reply.ListFields() if f.name != "next_page_token"]
                if shown:
                    leaks.append(f"{method.name} for B shows {shown}")
    finally:
        await channel.close()
    assert not leaks, "\n".join(leaks)

    unread = await env.messaging.GetInboxUnreadCount(pb.GetInboxUnreadCountRequest(
        brand_id=brand_b, account_id=member))
    assert unread.unread_count == 0
    try:
        await env.messaging.MarkInboxMessagesRead(pb.MarkInboxMessagesReadRequest(
            request_id=rid(), brand_id=brand_b, account_id=member,
            message_ids=[message.message_id]))
        raise AssertionError("brand B marked brand A's message read")
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND
    await env.messaging.MarkInboxMessagesRead(pb.MarkInboxMessagesReadRequest(
        request_id=rid(), brand_id=brand_b, account_id=member, all=True))
    policy = (await env.messaging.GetMessagingPolicy(pb.GetMessagingPolicyRequest(
        brand_id=brand_b))).policy
    assert (policy.brand_id, policy.daily_cap) == (brand_b, 0)
    provider_ids = [r["provider_message_id"] for r in await env.sql(
        "SELECT provider_message_id FROM messaging.outbound_messages WHERE brand_id = $1 "
        "AND provider_message_id <> ''",
        brand_a)]
    for provider_id in [*provider_ids, message.message_id]:
        try:
            await env.messaging.RecordDeliveryReceipt(pb.RecordDeliveryReceiptRequest(
                request_id=rid(), brand_id=brand_b, channel=pb.CHANNEL_INBOX,
                provider_message_id=provider_id, delivered=False, error_code="PROBE"))
            raise AssertionError("brand B recorded a receipt on brand A's message")
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND
    assert await env.sql("SELECT message_id, status FROM messaging.outbound_messages "
                         "WHERE brand_id = $1 ORDER BY message_id", brand_a) == before
    still = await env.messaging.GetInboxUnreadCount(pb.GetInboxUnreadCountRequest(
        brand_id=brand_a, account_id=member))
    assert still.unread_count == 1
