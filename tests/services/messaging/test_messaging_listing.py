"""Listing a brand's templates, campaigns and journeys: newest first, keyset paging across
pages, filters, and no brand ever sees another brand's items."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import grpc
import pytest

from brandclub.messaging.v1 import messaging_service_pb2 as pb
from libs.grpc_client import remote_error
from tests.services.messaging.conftest import Env, rid


async def collect(fetch: Callable[[str], Awaitable[tuple[list[Any], str]]]
                  ) -> tuple[list[Any], int]:
    """Every item over all pages, and the number of pages it took."""
    items: list[Any] = []
    token, pages = "", 0
    while True:
        page, token = await fetch(token)
        items += page
        pages += 1
        if not token:
            return items, pages


async def journey(env: Env, brand_id: str, name: str) -> pb.Journey:
    return (await env.messaging.CreateJourney(pb.CreateJourneyRequest(
        request_id=rid(), journey=pb.Journey(
            brand_id=brand_id, name=name, trigger=pb.JOURNEY_TRIGGER_CARD_OPENED,
            steps=[pb.JourneyStep(step_id="pause", kind=pb.JOURNEY_STEP_KIND_WAIT,
                                  wait_minutes=5)])))).journey


async def test_templates_page_newest_first_across_pages_per_brand(env: Env) -> None:
    """Seven templates come back newest first over three pages of three; another brand's
    template never appears, and the other brand sees only its own."""
    brand, other = await env.brand(), await env.brand()
    created = []
    for index in range(7):
        env.clock.now += timedelta(minutes=1 if index != 3 else 0)  # a tie on created_at
        created.append((await env.inbox_template(brand)).template_id)
    foreign = (await env.inbox_template(other)).template_id

    async def fetch(token: str) -> tuple[list[Any], str]:
        reply = await env.messaging.ListTemplates(pb.ListTemplatesRequest(
            brand_id=brand, page_size=3, page_token=token))
        return list(reply.templates), reply.next_page_token

    items, pages = await collect(fetch)
    ids = [t.template_id for t in items]
    assert pages == 3
    assert len(ids) == len(set(ids)) == 7
    assert set(ids) == set(created) and foreign not in ids
    times = [t.create_time.ToDatetime() for t in items]
    assert times == sorted(times, reverse=True)
    assert ids[0] == created[-1]
    others = await env.messaging.ListTemplates(pb.ListTemplatesRequest(brand_id=other))
    assert [t.template_id for t in others.templates] == [foreign]
    sms_only = await env.messaging.ListTemplates(pb.ListTemplatesRequest(
        brand_id=brand, channel=pb.CHANNEL_SMS))
    assert list(sms_only.templates) == []


async def test_campaigns_page_and_filter_by_status(env: Env) -> None:
    """Campaigns page newest first; status= keeps only launched ones; another brand sees none."""
    brand, other = await env.brand(), await env.brand()
    await env.add_members(brand, 2)
    snapshot = await env.snapshot_all(brand)
    template = await env.inbox_template(brand)
    ids = []
    for _ in range(5):
        env.clock.now += timedelta(minutes=1)
        ids.append((await env.messaging.CreateCampaign(pb.CreateCampaignRequest(
            request_id=rid(), campaign=pb.Campaign(
                brand_id=brand, name="spring", snapshot_id=snapshot.snapshot_id,
                template_id=template.template_id, channel=pb.CHANNEL_INBOX,
                variables={"offer": "20% off"})))).campaign.campaign_id)
    await env.messaging.LaunchCampaign(pb.LaunchCampaignRequest(
        request_id=rid(), brand_id=brand, campaign_id=ids[1],
        schedule_time=None))

    async def fetch(token: str) -> tuple[list[Any], str]:
        reply = await env.messaging.ListCampaigns(pb.ListCampaignsRequest(
            brand_id=brand, page_size=2, page_token=token))
        return list(reply.campaigns), reply.next_page_token

    items, pages = await collect(fetch)
    assert [c.campaign_id for c in items] == list(reversed(ids)) and pages == 3
    scheduled = await env.messaging.ListCampaigns(pb.ListCampaignsRequest(
        brand_id=brand, status=pb.CAMPAIGN_STATUS_SCHEDULED))
    assert [c.campaign_id for c in scheduled.campaigns] == [ids[1]]
    none = await env.messaging.ListCampaigns(pb.ListCampaignsRequest(brand_id=other))
    assert list(none.campaigns) == [] and none.next_page_token == ""


async def test_journeys_page_and_filter_by_state(env: Env) -> None:
    """Journeys page newest first; state=active keeps the activated one; brands are apart."""
    brand, other = await env.brand(), await env.brand()
    ids = []
    for index in range(4):
        env.clock.now += timedelta(minutes=1)
        ids.append((await journey(env, brand, f"j{index}")).journey_id)
    foreign = (await journey(env, other, "theirs")).journey_id
    await env.messaging.SetJourneyActive(pb.SetJourneyActiveRequest(
        request_id=rid(), brand_id=brand, journey_id=ids[2], active=True))

    async def fetch(token: str) -> tuple[list[Any], str]:
        reply = await env.messaging.ListJourneys(pb.ListJourneysRequest(
            brand_id=brand, page_size=3, page_token=token))
        return list(reply.journeys), reply.next_page_token

    items, pages = await collect(fetch)
    assert [j.journey_id for j in items] == list(reversed(ids)) and pages == 2
    active = await env.messaging.ListJourneys(pb.ListJourneysRequest(
        brand_id=brand, state=pb.JOURNEY_STATE_ACTIVE))
    assert [j.journey_id for j in active.journeys] == [ids[2]]
    inactive = await env.messaging.ListJourneys(pb.ListJourneysRequest(
        brand_id=brand, state=pb.JOURNEY_STATE_INACTIVE))
    assert len(inactive.journeys) == 3
    theirs = await env.messaging.ListJourneys(pb.ListJourneysRequest(brand_id=other))
    assert [j.journey_id for j in theirs.journeys] == [foreign]


@pytest.mark.parametrize("token", ["not-a-token", "eyJ0IjoieCIsImlkIjoieSJ9"])
async def test_listing_refuses_a_forged_page_token(env: Env, token: str) -> None:
    """A page token this service did not issue is INVALID_ARGUMENT naming page_token."""
    brand = await env.brand()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.messaging.ListTemplates(pb.ListTemplatesRequest(brand_id=brand,
                                                                  page_token=token))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in (caught.value.details() or "")


async def test_channels_page_by_channel_and_tokens_stay_with_their_brand(env: Env) -> None:
    """A brand's two channels come one per page, by channel name; the first page's token is
    refused for another brand (PAGE_TOKEN_INVALID) instead of paging that brand."""
    brand, other = await env.brand(), await env.brand()
    for channel in (pb.CHANNEL_WECHAT, pb.CHANNEL_SMS):
        await env.messaging.ConfigureChannel(pb.ConfigureChannelRequest(
            request_id=rid(), brand_id=brand, channel=channel, provider=pb.PROVIDER_SANDBOX))

    async def fetch(token: str) -> tuple[list[Any], str]:
        reply = await env.messaging.ListChannels(pb.ListChannelsRequest(
            brand_id=brand, page_size=1, page_token=token))
        return list(reply.channels), reply.next_page_token

    items, pages = await collect(fetch)
    assert [c.channel for c in items] == [pb.CHANNEL_SMS, pb.CHANNEL_WECHAT] and pages == 2
    first = await env.messaging.ListChannels(pb.ListChannelsRequest(brand_id=brand,
                                                                    page_size=1))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.messaging.ListChannels(pb.ListChannelsRequest(
            brand_id=other, page_size=1, page_token=first.next_page_token))
    assert remote_error(caught.value).reason == "PAGE_TOKEN_INVALID"
    theirs = await env.messaging.ListChannels(pb.ListChannelsRequest(brand_id=other))
    assert list(theirs.channels) == [] and theirs.next_page_token == ""


async def test_consents_page_by_channel_then_purpose_for_one_member(env: Env) -> None:
    """Four consents come three and one, ordered by (channel, purpose); a token of one member's
    list is refused for another member's."""
    brand = await env.brand()
    for channel in (pb.CHANNEL_SMS, pb.CHANNEL_INBOX):
        for purpose in (pb.PURPOSE_SERVICE, pb.PURPOSE_MARKETING):
            await env.messaging.SetConsent(pb.SetConsentRequest(
                request_id=rid(), brand_id=brand, account_id="acc_1", channel=channel,
                purpose=purpose, granted=True, source="member_centre"))

    async def fetch(token: str) -> tuple[list[Any], str]:
        reply = await env.messaging.ListConsents(pb.ListConsentsRequest(
            brand_id=brand, account_id="acc_1", page_size=3, page_token=token))
        return list(reply.consents), reply.next_page_token

    items, pages = await collect(fetch)
    assert pages == 2
    assert [(c.channel, c.purpose) for c in items] == [
        (pb.CHANNEL_INBOX, pb.PURPOSE_MARKETING), (pb.CHANNEL_INBOX, pb.PURPOSE_SERVICE),
        (pb.CHANNEL_SMS, pb.PURPOSE_MARKETING), (pb.CHANNEL_SMS, pb.PURPOSE_SERVICE)]
    first = await env.messaging.ListConsents(pb.ListConsentsRequest(
        brand_id=brand, account_id="acc_1", page_size=3))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.messaging.ListConsents(pb.ListConsentsRequest(
            brand_id=brand, account_id="acc_2", page_size=3, page_token=first.next_page_token))
    assert remote_error(caught.value).reason == "PAGE_TOKEN_INVALID"


LIST_RPCS = sorted(m.name for m in pb.DESCRIPTOR.services_by_name["MessagingService"].methods
                   if m.name.startswith("List"))


def test_every_list_rpc_pages() -> None:
    """Every List rpc takes page_size and page_token and answers next_page_token (AIP-158)."""
    service = pb.DESCRIPTOR.services_by_name["MessagingService"]
    for name in LIST_RPCS:
        method = service.methods_by_name[name]
        assert {"page_size", "page_token"} <= set(method.input_type.fields_by_name), name
        assert "next_page_token" in method.output_type.fields_by_name, name


@pytest.mark.parametrize("rpc", LIST_RPCS)
async def test_every_list_rpc_refuses_a_negative_page_size(env: Env, rpc: str) -> None:
    """page_size -1 is INVALID_ARGUMENT naming page_size, whatever else the request lacks."""
    brand = await env.brand()
    request_type = getattr(pb, f"{rpc}Request")
    request = request_type(brand_id=brand, page_size=-1)
    for field in ("account_id", "campaign_id"):
        if field in request_type.DESCRIPTOR.fields_by_name:
            setattr(request, field, "acc_1" if field == "account_id" else "cmp_1")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(env.messaging, rpc)(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert remote_error(caught.value).metadata["field"] == "page_size"
