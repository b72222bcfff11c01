"""The privacy contract served over `libs.privacy`, the same way by every service.

Each service that holds member data declares `MemberDataService` in its own package
(`protos/brandclub/<service>/v1/member_data_service.proto`, so the package still names the
process that serves it), and each that reacts to a cancellation `MemberErasureService`; their
answers are the shared messages of `brandclub.privacy.v1`. These servicers turn the request into
the two ids, call the service's `MemberPrivacy` and turn sections and erasures into those
messages: translation only, the same for every service, so it lives once here. The service's
generated module comes in as an argument; libs knows none of them.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import grpc
from google.protobuf import struct_pb2

from brandclub.privacy.v1 import privacy_pb2 as pb
from libs.privacy import Action, Erasure, MemberPrivacy, Section
from libs.protoconv import timestamp

_ACTIONS = {Action.ERASE: pb.ERASURE_ACTION_ERASED,
            Action.PSEUDONYMISE: pb.ERASURE_ACTION_PSEUDONYMISED}


def section_pb(section: Section) -> pb.DataSection:
    records = []
    for record in section.records:
        struct = struct_pb2.Struct()
        struct.update(record)
        records.append(struct)
    return pb.DataSection(name=section.name, description=section.description,
                          records=records, truncated=section.truncated)


def erasure_pb(erasure: Erasure) -> pb.MemberErasure:
    return pb.MemberErasure(
        member_id=erasure.member_id, event_id=erasure.event_id,
        cancel_time=timestamp(erasure.cancelled_at), erase_time=timestamp(erasure.erased_at),
        removals=[pb.Removal(table=r.table, rows=r.rows, action=_ACTIONS[r.action])
                  for r in erasure.removals])


class MemberDataServicer:
    """`<package>.MemberDataService` over a service's holdings."""

    def __init__(self, privacy: MemberPrivacy, service_pb: ModuleType) -> None:
        self._privacy = privacy
        self._pb = service_pb

    async def ExportMemberData(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        sections = await self._privacy.export(request.brand_id, request.account_id)
        return self._pb.ExportMemberDataResponse(sections=[section_pb(s) for s in sections])


class MemberErasureServicer:
    """`<package>.MemberErasureService` over a service's erasure records."""

    def __init__(self, privacy: MemberPrivacy, service_pb: ModuleType) -> None:
        self._privacy = privacy
        self._pb = service_pb

    async def GetMemberErasures(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        erasures = await self._privacy.erasures(request.brand_id, request.account_id)
        return self._pb.GetMemberErasuresResponse(erasures=[erasure_pb(e) for e in erasures])


def service_names(service_pb: ModuleType) -> list[str]:
    """The privacy services a service's member_data_service module declares (full names)."""
    return [service.full_name for service in service_pb.DESCRIPTOR.services_by_name.values()]


def register(server: grpc.aio.Server, privacy: MemberPrivacy, service_pb: ModuleType,
             service_grpc: ModuleType) -> None:
    """Serve the privacy services the module declares (export; erasures where declared)."""
    service_grpc.add_MemberDataServiceServicer_to_server(
        MemberDataServicer(privacy, service_pb), server)
    if "MemberErasureService" in service_pb.DESCRIPTOR.services_by_name:
        service_grpc.add_MemberErasureServiceServicer_to_server(
            MemberErasureServicer(privacy, service_pb), server)
