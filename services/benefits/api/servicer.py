"""gRPC servicer for benefits: protobuf <-> use cases."""

from __future__ import annotations

import grpc

from brandclub.benefits.v1 import benefits_service_pb2 as pb
from brandclub.benefits.v1 import benefits_service_pb2_grpc as pb_grpc
from libs.db import Database
from services.benefits import usecases


class BenefitsServicer(pb_grpc.BenefitsServiceServicer):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def GetPointsBalance(self, request: pb.GetPointsBalanceRequest,
                               context: grpc.aio.ServicerContext
                               ) -> pb.GetPointsBalanceResponse:
        async with self._db.connection() as conn:
            balance = await usecases.get_points_balance(conn, request.brand_id,
                                                        request.account_id)
        return pb.GetPointsBalanceResponse(brand_id=balance.brand_id,
                                           account_id=balance.account_id,
                                           available_points=balance.available,
                                           pending_points=balance.pending)
