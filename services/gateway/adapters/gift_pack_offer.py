"""Keep LV0 cards' gift-pack pop-up in step with the brand's card-opening gift pack.

Benefits owns gift packs; membership shows the offer on LV0 cards. After any gift pack write
(console or open platform), the offer is set to what benefits sees as live now.
"""

from __future__ import annotations

import hashlib

from brandclub.benefits.v1 import benefits_service_pb2 as benefits_pb
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from services.gateway.adapters.upstreams import Upstreams


async def sync_lv0_offer(upstreams: Upstreams, brand_id: str, write_id: str) -> None:
    """The live pack when one is published, none once it is withdrawn or over. The request id
    derives from the write's, so a retried write never sets the offer twice."""
    current = await upstreams.benefits.GetCardOpeningGiftPack(
        benefits_pb.GetCardOpeningGiftPackRequest(brand_id=brand_id))
    pack_id = current.gift_pack.gift_pack_id if current.HasField("gift_pack") else ""
    digest = hashlib.sha256(f"{write_id}|{pack_id}".encode()).hexdigest()[:48]
    await upstreams.membership.SetLv0GiftPackOffer(membership_pb.SetLv0GiftPackOfferRequest(
        request_id=f"lv0-offer:{brand_id}:{digest}", brand_id=brand_id, gift_pack_id=pack_id))
