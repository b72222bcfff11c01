"""The privacy contract asked of every service behind the gateway: each service's
MemberDataService and MemberErasureService (brandclub/<service>/v1/member_data_service.proto,
answering the shared brandclub.privacy.v1 messages), over the channel the gateway already
keeps to its process."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf import json_format

from brandclub.benefits.v1 import member_data_service_pb2 as benefits_pb
from brandclub.benefits.v1 import member_data_service_pb2_grpc as benefits_grpc
from brandclub.engagement.v1 import member_data_service_pb2 as engagement_pb
from brandclub.engagement.v1 import member_data_service_pb2_grpc as engagement_grpc
from brandclub.identity.v1 import member_data_service_pb2 as identity_pb
from brandclub.identity.v1 import member_data_service_pb2_grpc as identity_grpc
from brandclub.membership.v1 import member_data_service_pb2 as membership_pb
from brandclub.membership.v1 import member_data_service_pb2_grpc as membership_grpc
from brandclub.messaging.v1 import member_data_service_pb2 as messaging_pb
from brandclub.messaging.v1 import member_data_service_pb2_grpc as messaging_grpc
from brandclub.privacy.v1 import privacy_pb2 as pb
from libs.grpc_client import remote_error
from libs.protoconv import from_timestamp
from services.gateway.domain.privacy import Removal, ServiceErasure, ServiceExport

# The services that hold member data, in the order the file lists them: (request, stub).
_DATA: dict[str, tuple[Any, Any]] = {
    "identity": (identity_pb, identity_grpc), "membership": (membership_pb, membership_grpc),
    "benefits": (benefits_pb, benefits_grpc), "engagement": (engagement_pb, engagement_grpc),
    "messaging": (messaging_pb, messaging_grpc)}
DATA_HOLDERS = tuple(_DATA)
# The services that erase on cancellation (identity's account is not one brand's to erase).
ERASERS = tuple(name for name, (module, _) in _DATA.items()
                if "MemberErasureService" in module.DESCRIPTOR.services_by_name)
_ACTIONS = {pb.ERASURE_ACTION_ERASED: "erased",
            pb.ERASURE_ACTION_PSEUDONYMISED: "pseudonymised"}


def _plain(value: Any) -> Any:
    """Struct numbers travel as doubles: whole ones go back to integers (points, cents)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _export(service: str, reply: Any) -> ServiceExport:
    return ServiceExport(service, [
        (section.name, section.description,
         [_plain(json_format.MessageToDict(record)) for record in section.records],
         section.truncated)
        for section in reply.sections])


def _erasures(reply: Any) -> list[ServiceErasure]:
    return [ServiceErasure(e.member_id, e.event_id, from_timestamp(e.cancel_time),
                           from_timestamp(e.erase_time),
                           [Removal(r.table, r.rows, _ACTIONS.get(r.action, "unspecified"))
                            for r in e.removals])
            for e in reply.erasures]


class PrivacyUpstreams:
    def __init__(self, processes: Mapping[str, grpc.aio.Channel]) -> None:
        self._processes = processes

    async def export(self, service: str, brand_id: str, account_id: str) -> ServiceExport:
        try:
            module, stubs = _DATA[service]
            reply = await stubs.MemberDataServiceStub(self._processes[service]).ExportMemberData(
                module.ExportMemberDataRequest(brand_id=brand_id, account_id=account_id))
        except grpc.aio.AioRpcError as error:
            raise remote_error(error) from None
        return _export(service, reply)

    async def exports(self, brand_id: str, account_id: str,
                      services: tuple[str, ...] = DATA_HOLDERS) -> list[ServiceExport]:
        return list(await asyncio.gather(*(self.export(name, brand_id, account_id)
                                           for name in services)))

    async def erasures(self, brand_id: str, account_id: str
                       ) -> dict[str, list[ServiceErasure]]:
        async def one(service: str) -> list[ServiceErasure]:
            try:
                module, stubs = _DATA[service]
                stub = stubs.MemberErasureServiceStub(self._processes[service])
                reply = await stub.GetMemberErasures(
                    module.GetMemberErasuresRequest(brand_id=brand_id, account_id=account_id))
            except grpc.aio.AioRpcError as error:
                raise remote_error(error) from None
            return _erasures(reply)

        answers = await asyncio.gather(*(one(name) for name in ERASERS))
        return dict(zip(ERASERS, answers, strict=True))
