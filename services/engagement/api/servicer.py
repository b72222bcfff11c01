"""gRPC servicer for engagement: protobuf <-> use cases."""

from __future__ import annotations

import grpc

from brandclub.engagement.v1 import engagement_service_pb2 as pb
from brandclub.engagement.v1 import engagement_service_pb2_grpc as pb_grpc
from libs.db import Database
from libs.protoconv import timestamp
from services.engagement import usecases
from services.engagement.domain.activities import Activity

_KINDS = {"sign_in": pb.ACTIVITY_KIND_SIGN_IN, "lottery": pb.ACTIVITY_KIND_LOTTERY,
          "vote": pb.ACTIVITY_KIND_VOTE, "quiz": pb.ACTIVITY_KIND_QUIZ,
          "invite": pb.ACTIVITY_KIND_INVITE}
_STATES = {"draft": pb.ACTIVITY_STATE_DRAFT, "scheduled": pb.ACTIVITY_STATE_SCHEDULED,
           "live": pb.ACTIVITY_STATE_LIVE, "closed": pb.ACTIVITY_STATE_CLOSED}


def activity_pb(activity: Activity) -> pb.Activity:
    return pb.Activity(activity_id=activity.activity_id, brand_id=activity.brand_id,
                       kind=_KINDS[activity.kind.value], state=_STATES[activity.state.value],
                       title=activity.title, start_time=timestamp(activity.starts_at),
                       end_time=timestamp(activity.ends_at))


class EngagementServicer(pb_grpc.EngagementServiceServicer):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def ListActivities(self, request: pb.ListActivitiesRequest,
                             context: grpc.aio.ServicerContext) -> pb.ListActivitiesResponse:
        async with self._db.connection() as conn:
            page, token = await usecases.list_activities(conn, request.brand_id,
                                                         request.page_size, request.page_token)
        return pb.ListActivitiesResponse(activities=[activity_pb(a) for a in page],
                                         next_page_token=token)
