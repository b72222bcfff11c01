"""The open-platform part of the identity service, composed into its gRPC server."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from brandclub.identity.v1 import isv_service_pb2 as pb
from brandclub.identity.v1 import isv_service_pb2_grpc as pb_grpc
from libs.config import ConfigError
from libs.db import Database
from services.identity.isv.api.servicer import IsvServicer
from services.identity.isv.domain.sealing import SecretBox
from services.identity.isv.usecases.context import IsvContext

ISV_SERVICE_NAME = pb.DESCRIPTOR.services_by_name["IsvService"].full_name


def secret_box(keys: dict[str, bytes]) -> SecretBox:
    """The box over ISV_SECRET_KEYS (IdentitySettings.isv_secret_keys); the first key seals."""
    try:
        return SecretBox(keys)
    except ValueError as exc:
        raise ConfigError(f"ISV_SECRET_KEYS: {exc}") from None


@dataclass
class IsvPart:
    servicer: IsvServicer
    service_name: str = ISV_SERVICE_NAME

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_IsvServiceServicer_to_server(self.servicer, server)


def isv_part(db: Database, isv_secret_keys: dict[str, bytes]) -> IsvPart:
    return IsvPart(IsvServicer(IsvContext(db, secret_box(isv_secret_keys))))
