"""Creating an app the way an ISV does, and reading the reason of a refused call."""

from __future__ import annotations

import grpc

from brandclub.identity.v1 import isv_service_pb2 as pb
from brandclub.identity.v1 import isv_service_pb2_grpc as isv_grpc
from libs.grpc_client import remote_error

REDIRECT = "https://isv.example/callback"


async def new_app(isv: isv_grpc.IsvServiceStub, *,
                  status: pb.AppStatus.ValueType = pb.APP_STATUS_TEST,
                  scopes: tuple[str, ...] = ("member.read", "points.read"),
                  request_id: str = "app-1") -> pb.CreateAppResponse:
    return await isv.CreateApp(pb.CreateAppRequest(
        request_id=request_id, name="Loyalty Pro", status=status, scopes=list(scopes),
        redirect_uri=REDIRECT))


def reason(error: grpc.aio.AioRpcError) -> str:
    return remote_error(error).reason
