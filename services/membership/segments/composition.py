"""What the membership process hosts for reaching members: SegmentService, DashboardService,
the points projection consumer and the dashboard refresh loop. main.py adds these parts
to its composition with one call."""

from __future__ import annotations

import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import grpc

from brandclub.membership.v1 import dashboard_service_pb2 as dashboard_pb
from brandclub.membership.v1 import dashboard_service_pb2_grpc as dashboard_grpc
from brandclub.membership.v1 import segment_service_pb2 as segment_pb
from brandclub.membership.v1 import segment_service_pb2_grpc as segment_grpc
from libs.clock import Clock, system_clock
from libs.eventbus import EventConsumer
from libs.service import Resources
from services.membership.dashboards import usecases as dashboard_usecases
from services.membership.dashboards.api.servicer import DashboardServicer
from services.membership.segments import usecases
from services.membership.segments.api.servicer import SegmentServicer
from services.membership.usecases.context import Context

SEGMENT_SERVICE_NAME = segment_pb.DESCRIPTOR.services_by_name["SegmentService"].full_name
DASHBOARD_SERVICE_NAME = dashboard_pb.DESCRIPTOR.services_by_name["DashboardService"].full_name
POINTS_CONSUMER_GROUP = "membership-points"


@dataclass
class ReachPart:
    service_names: list[str]
    registrars: list[Callable[[grpc.aio.Server], None]] = field(default_factory=list)
    background: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)

    def register(self, server: grpc.aio.Server) -> None:
        for registrar in self.registrars:
            registrar(server)


def reach_part(resources: Resources, clock: Clock = system_clock, *,
               refresh_interval_seconds: float = 900.0) -> ReachPart:
    context = Context(db=resources.db, clock=clock)
    segments = SegmentServicer(context)
    points = EventConsumer(db=resources.db, redis=resources.redis, group=POINTS_CONSUMER_GROUP,
                           topics=["benefits"], handler=usecases.on_benefits_event,
                           consumer_name=f"membership-{socket.gethostname()}")
    dashboards = DashboardServicer(context)
    return ReachPart(
        [SEGMENT_SERVICE_NAME, DASHBOARD_SERVICE_NAME],
        [lambda server: segment_grpc.add_SegmentServiceServicer_to_server(segments, server),
         lambda server: dashboard_grpc.add_DashboardServiceServicer_to_server(dashboards,
                                                                              server)],
        [points.run, dashboard_usecases.refresh_loop(context, refresh_interval_seconds)])
