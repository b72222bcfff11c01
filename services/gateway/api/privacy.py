"""Privacy requests over HTTP: a shopper's own data in a brand (storefront), and a member's
data and erasure report for the brand's console (docs/operations.md, Privacy requests).

The gateway asks every service for its part (adapters/privacy.py) and assembles the answer
(domain/privacy.py); each service masks what it exports, so the file a shopper downloads and
the one the brand's console downloads are the same."""

from __future__ import annotations

import grpc
from aiohttp import web

from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from libs.clock import system_clock
from libs.errors import NotFound
from libs.grpc_client import remote_error
from services.gateway.adapters.privacy import DATA_HOLDERS, PrivacyUpstreams
from services.gateway.api.app_keys import UPSTREAMS, VERIFIER
from services.gateway.api.routes import Route, RouteTable, Schema, array, obj, string
from services.gateway.api.rpc_routes import merchant_of
from services.gateway.domain.privacy import EXPORT_FORMAT, erasure_report, export_file

_DOWNLOAD = "attachment; filename=\"brandclub-member-data-{brand}-{account}.json\""


def _privacy(request: web.Request) -> PrivacyUpstreams:
    return PrivacyUpstreams(request.app[UPSTREAMS].processes())


async def _existing_brand(request: web.Request, brand_id: str) -> None:
    try:
        await request.app[UPSTREAMS].membership.GetBrand(
            membership_pb.GetBrandRequest(brand_id=brand_id))
    except grpc.aio.AioRpcError as error:
        raise remote_error(error) from None


async def _file(request: web.Request, brand_id: str, account_id: str, *,
                member_only: bool) -> web.Response:
    """Membership first: the console may export only someone who is or was a member."""
    privacy = _privacy(request)
    membership = await privacy.export("membership", brand_id, account_id)
    memberships = dict((name, records) for name, _, records, _ in membership.sections)
    if member_only and not memberships.get("memberships"):
        raise NotFound(f"account {account_id} has never been a member of the brand",
                       reason="MEMBER_NOT_FOUND", metadata={"account_id": account_id})
    others = await privacy.exports(brand_id, account_id,
                                   tuple(s for s in DATA_HOLDERS if s != "membership"))
    exports = sorted([membership, *others], key=lambda e: DATA_HOLDERS.index(e.service))
    document = export_file(brand_id, account_id, exports, system_clock())
    return web.json_response(document, headers={"Content-Disposition": _DOWNLOAD.format(
        brand=brand_id, account=account_id)})


async def my_data(request: web.Request) -> web.Response:
    principal = await request.app[VERIFIER].verify(request.headers.get("Authorization"))
    account_id = principal.require_shopper()
    brand_id = request.match_info["brand_id"]
    await _existing_brand(request, brand_id)
    return await _file(request, brand_id, account_id, member_only=False)


async def member_data_export(request: web.Request) -> web.Response:
    brand_id, _ = await merchant_of(request)
    return await _file(request, brand_id, request.match_info["account_id"].strip(),
                       member_only=True)


async def member_erasure_report(request: web.Request) -> web.Response:
    brand_id, _ = await merchant_of(request)
    account_id = request.match_info["account_id"].strip()
    by_service = await _privacy(request).erasures(brand_id, account_id)
    cancellations = by_service["membership"]
    return web.json_response(erasure_report(brand_id, account_id, cancellations, by_service,
                                            system_clock()))


_SECTION: Schema = obj({"description": string(), "records": array({"type": "object"}),
                        "truncated": {"type": "boolean"}})
EXPORT_SCHEMA: Schema = obj({
    "format": string(f"always {EXPORT_FORMAT}"), "brand_id": string(), "account_id": string(),
    "generated_at": string(format="date-time"),
    "services": {"type": "object", "description": "per service (identity, membership, "
                 "benefits, engagement, messaging): its sections by name",
                 "additionalProperties": obj({"sections": {
                     "type": "object", "additionalProperties": _SECTION}})}},
    required=["format", "brand_id", "account_id", "generated_at", "services"])
_REMOVAL: Schema = obj({"table": string(), "rows": {"type": "integer"},
                        "action": string(enum=["erased", "pseudonymised"])})
REPORT_SCHEMA: Schema = obj({
    "brand_id": string(), "account_id": string(), "generated_at": string(format="date-time"),
    "requests": array(obj({
        "member_id": string("the membership that ended"), "event_id": string(),
        "cancelled_at": string(format="date-time"),
        "due_by": string("cancelled_at + 24 hours", format="date-time"),
        "status": string(enum=["complete", "pending", "overdue"]),
        "completed_at": {"type": ["string", "null"], "format": "date-time"},
        "pending_services": array(string()),
        "services": {"type": "object", "additionalProperties": obj({
            "status": string(enum=["done", "pending"]),
            "erased_at": string(format="date-time"), "removals": array(_REMOVAL)})}}))})


def routes(table: RouteTable) -> None:
    table.add(Route("GET", "/storefront/v1/brands/{brand_id}/my-data", my_data,
                    "Everything Brandclub holds about the shopper for the brand (PIPL / GDPR "
                    "access), as one JSON file: sections per service.", "storefront", "shopper",
                    EXPORT_SCHEMA, errors=(401, 403, 404)))
    table.add(Route("GET", "/console/v1/members/{account_id}/data-export", member_data_export,
                    "Everything held about one member or former member, as the file the "
                    "member would download (ids masked, never a phone number).", "console",
                    "merchant", EXPORT_SCHEMA, errors=(400, 401, 403, 404)))
    table.add(Route("GET", "/console/v1/members/{account_id}/erasure-report",
                    member_erasure_report,
                    "What each service erased or pseudonymised for each of the member's "
                    "cancellations, and when; pending or overdue (24 hours) otherwise.",
                    "console", "merchant", REPORT_SCHEMA, errors=(400, 401, 403)))
