"""gRPC SegmentService: protobuf <-> segment use cases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import grpc

from brandclub.membership.v1 import segment_service_pb2 as pb
from brandclub.membership.v1 import segment_service_pb2_grpc as pb_grpc
from libs.db import Connection, Database
from libs.idempotency import IdempotentExecutor
from libs.protoconv import from_timestamp, timestamp
from services.membership.segments import usecases
from services.membership.segments.domain.model import Segment, Snapshot
from services.membership.segments.domain.rules import Condition, Group, Rule

_GROUP_OPERATORS = {pb.RULE_GROUP_OPERATOR_AND: "and", pb.RULE_GROUP_OPERATOR_OR: "or"}


def rule_from_pb(rule: pb.SegmentRule) -> Rule | None:
    node = rule.WhichOneof("node")
    if node == "group":
        g = rule.group
        # A child with neither group nor condition reads as an empty group: refused there.
        return Group(_GROUP_OPERATORS.get(g.operator, ""),
                     tuple(rule_from_pb(child) or Group("and", ()) for child in g.rules))
    if node == "condition":
        c = rule.condition
        return Condition(c.field, c.operator.lower(), c.number, c.number_to, c.days,
                         tuple(c.values),
                         from_timestamp(c.time_from) if c.HasField("time_from") else None,
                         from_timestamp(c.time_to) if c.HasField("time_to") else None)
    return None


def rule_pb(rule: Rule) -> pb.SegmentRule:
    if isinstance(rule, Group):
        op = next(k for k, v in _GROUP_OPERATORS.items() if v == rule.operator)
        return pb.SegmentRule(group=pb.RuleGroup(operator=op,
                                                 rules=[rule_pb(r) for r in rule.rules]))
    return pb.SegmentRule(condition=pb.RuleCondition(
        field=rule.field, operator=rule.operator, number=rule.number,
        number_to=rule.number_to, days=rule.days, values=list(rule.values),
        time_from=timestamp(rule.time_from) if rule.time_from else None,
        time_to=timestamp(rule.time_to) if rule.time_to else None))


def segment_pb(s: Segment) -> pb.Segment:
    return pb.Segment(segment_id=s.segment_id, brand_id=s.brand_id, name=s.name,
                      rule=rule_pb(s.rule), create_time=timestamp(s.created_at))


def snapshot_pb(s: Snapshot) -> pb.SegmentSnapshot:
    return pb.SegmentSnapshot(snapshot_id=s.snapshot_id, brand_id=s.brand_id,
                              segment_id=s.segment_id, member_count=s.member_count,
                              create_time=timestamp(s.created_at))


class SegmentServicer(pb_grpc.SegmentServiceServicer):
    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._idempotent = IdempotentExecutor(db)
        self._clock = clock

    async def PreviewSegment(self, request: pb.PreviewSegmentRequest,
                             context: grpc.aio.ServicerContext) -> pb.PreviewSegmentResponse:
        rule = rule_from_pb(request.rule) if request.HasField("rule") else None
        async with self._db.connection() as conn:
            count = await usecases.preview(conn, request.brand_id, rule, self._clock())
        return pb.PreviewSegmentResponse(member_count=count)

    async def CreateSegment(self, request: pb.CreateSegmentRequest,
                            context: grpc.aio.ServicerContext) -> pb.CreateSegmentResponse:
        rule = rule_from_pb(request.rule) if request.HasField("rule") else None

        async def work(conn: Connection) -> pb.CreateSegmentResponse:
            segment = await usecases.create_segment(conn, request.brand_id, request.name, rule,
                                                    self._clock())
            return pb.CreateSegmentResponse(segment=segment_pb(segment))

        return await self._idempotent.run("CreateSegment", request, pb.CreateSegmentResponse,
                                          work)

    async def GetSegment(self, request: pb.GetSegmentRequest,
                         context: grpc.aio.ServicerContext) -> pb.GetSegmentResponse:
        async with self._db.connection() as conn:
            segment = await usecases.get_segment(conn, request.brand_id, request.segment_id)
        return pb.GetSegmentResponse(segment=segment_pb(segment))

    async def ListSegments(self, request: pb.ListSegmentsRequest,
                           context: grpc.aio.ServicerContext) -> pb.ListSegmentsResponse:
        async with self._db.connection() as conn:
            page, token = await usecases.list_segments(conn, request.brand_id,
                                                       request.page_size, request.page_token)
        return pb.ListSegmentsResponse(segments=[segment_pb(s) for s in page],
                                       next_page_token=token)

    async def CountSegment(self, request: pb.CountSegmentRequest,
                           context: grpc.aio.ServicerContext) -> pb.CountSegmentResponse:
        async with self._db.connection() as conn:
            count = await usecases.count_segment(conn, request.brand_id, request.segment_id,
                                                 self._clock())
        return pb.CountSegmentResponse(member_count=count)

    async def EvaluateSegmentForMember(self, request: pb.EvaluateSegmentForMemberRequest,
                                       context: grpc.aio.ServicerContext
                                       ) -> pb.EvaluateSegmentForMemberResponse:
        async with self._db.connection() as conn:
            matches = await usecases.member_matches(conn, request.brand_id, request.segment_id,
                                                    request.account_id, self._clock())
        return pb.EvaluateSegmentForMemberResponse(matches=matches)

    async def CreateSegmentSnapshot(self, request: pb.CreateSegmentSnapshotRequest,
                                    context: grpc.aio.ServicerContext
                                    ) -> pb.CreateSegmentSnapshotResponse:
        async def work(conn: Connection) -> pb.CreateSegmentSnapshotResponse:
            snapshot = await usecases.create_snapshot(conn, request.brand_id,
                                                      request.segment_id, self._clock())
            return pb.CreateSegmentSnapshotResponse(snapshot=snapshot_pb(snapshot))

        return await self._idempotent.run("CreateSegmentSnapshot", request,
                                          pb.CreateSegmentSnapshotResponse, work)

    async def GetSegmentSnapshot(self, request: pb.GetSegmentSnapshotRequest,
                                 context: grpc.aio.ServicerContext
                                 ) -> pb.GetSegmentSnapshotResponse:
        async with self._db.connection() as conn:
            snapshot = await usecases.get_snapshot(conn, request.brand_id, request.snapshot_id)
        return pb.GetSegmentSnapshotResponse(snapshot=snapshot_pb(snapshot))

    async def ListSnapshotMembers(self, request: pb.ListSnapshotMembersRequest,
                                  context: grpc.aio.ServicerContext
                                  ) -> pb.ListSnapshotMembersResponse:
        async with self._db.connection() as conn:
            page, token = await usecases.snapshot_members(
                conn, request.brand_id, request.snapshot_id, request.page_size,
                request.page_token)
        return pb.ListSnapshotMembersResponse(
            members=[pb.SnapshotMember(account_id=m.account_id, level=m.level,
                                       points_balance=m.points_balance,
                                       order_count=m.order_count) for m in page],
            next_page_token=token)
