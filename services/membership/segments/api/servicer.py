"""gRPC SegmentService: protobuf <-> segment use cases."""

from __future__ import annotations

import grpc

from brandclub.membership.v1 import segment_service_pb2 as pb
from brandclub.membership.v1 import segment_service_pb2_grpc as pb_grpc
from libs.protoconv import from_timestamp, timestamp
from services.membership.segments import usecases
from services.membership.segments.domain.model import Segment, Snapshot
from services.membership.segments.domain.rules import Condition, Group, Rule
from services.membership.usecases.context import Context

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
    """Each RPC: the request translated, one use-case coroutine awaited, its result
    translated."""

    def __init__(self, context: Context) -> None:
        self._context = context

    async def PreviewSegment(self, request: pb.PreviewSegmentRequest,
                             context: grpc.aio.ServicerContext) -> pb.PreviewSegmentResponse:
        rule = rule_from_pb(request.rule) if request.HasField("rule") else None
        count = await usecases.preview(self._context, request.brand_id, rule)
        return pb.PreviewSegmentResponse(member_count=count)

    async def CreateSegment(self, request: pb.CreateSegmentRequest,
                            context: grpc.aio.ServicerContext) -> pb.CreateSegmentResponse:
        rule = rule_from_pb(request.rule) if request.HasField("rule") else None
        return await usecases.create_segment(
            self._context, request.brand_id, request.name, rule,
            self._context.once("CreateSegment", request, pb.CreateSegmentResponse,
                               lambda segment: pb.CreateSegmentResponse(
                                   segment=segment_pb(segment))))

    async def GetSegment(self, request: pb.GetSegmentRequest,
                         context: grpc.aio.ServicerContext) -> pb.GetSegmentResponse:
        segment = await usecases.get_segment(self._context, request.brand_id,
                                             request.segment_id)
        return pb.GetSegmentResponse(segment=segment_pb(segment))

    async def ListSegments(self, request: pb.ListSegmentsRequest,
                           context: grpc.aio.ServicerContext) -> pb.ListSegmentsResponse:
        page, token = await usecases.list_segments(self._context, request.brand_id,
                                                   request.page_size, request.page_token)
        return pb.ListSegmentsResponse(segments=[segment_pb(s) for s in page],
                                       next_page_token=token)

    async def CountSegment(self, request: pb.CountSegmentRequest,
                           context: grpc.aio.ServicerContext) -> pb.CountSegmentResponse:
        count = await usecases.count_segment(self._context, request.brand_id,
                                             request.segment_id)
        return pb.CountSegmentResponse(member_count=count)

    async def EvaluateSegmentForMember(self, request: pb.EvaluateSegmentForMemberRequest,
                                       context: grpc.aio.ServicerContext
                                       ) -> pb.EvaluateSegmentForMemberResponse:
        matches = await usecases.evaluate_segment_for_member(
            self._context, request.brand_id, request.segment_id, request.account_id)
        return pb.EvaluateSegmentForMemberResponse(matches=matches)

    async def CreateSegmentSnapshot(self, request: pb.CreateSegmentSnapshotRequest,
                                    context: grpc.aio.ServicerContext
                                    ) -> pb.CreateSegmentSnapshotResponse:
        return await usecases.create_snapshot(
            self._context, request.brand_id, request.segment_id,
            self._context.once("CreateSegmentSnapshot", request,
                               pb.CreateSegmentSnapshotResponse,
                               lambda snapshot: pb.CreateSegmentSnapshotResponse(
                                   snapshot=snapshot_pb(snapshot))))

    async def GetSegmentSnapshot(self, request: pb.GetSegmentSnapshotRequest,
                                 context: grpc.aio.ServicerContext
                                 ) -> pb.GetSegmentSnapshotResponse:
        snapshot = await usecases.get_snapshot(self._context, request.brand_id,
                                               request.snapshot_id)
        return pb.GetSegmentSnapshotResponse(snapshot=snapshot_pb(snapshot))

    async def ListSnapshotMembers(self, request: pb.ListSnapshotMembersRequest,
                                  context: grpc.aio.ServicerContext
                                  ) -> pb.ListSnapshotMembersResponse:
        page, token = await usecases.list_snapshot_members(
            self._context, request.brand_id, request.snapshot_id, request.page_size,
            request.page_token)
        return pb.ListSnapshotMembersResponse(
            members=[pb.SnapshotMember(account_id=m.account_id, level=m.level,
                                       points_balance=m.points_balance,
                                       order_count=m.order_count) for m in page],
            next_page_token=token)
