"""The open-platform part of the identity service, composed into its gRPC server."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass

import grpc

from brandclub.identity.v1 import isv_service_pb2 as pb
from brandclub.identity.v1 import isv_service_pb2_grpc as pb_grpc
from libs.config import ConfigError, Env
from libs.db import Database
from services.identity.isv.api.servicer import IsvServicer
from services.identity.isv.domain.sealing import SecretBox

ISV_SERVICE_NAME = pb.DESCRIPTOR.services_by_name["IsvService"].full_name
# Development key: used only when ISV_SECRET_KEYS is unset (deployments set it from a Secret).
_DEV_KEY = base64.b64encode(b"brandclub-dev-isv-secret-sealing").decode()


def secret_box_from_env(source: Mapping[str, str] | None = None) -> SecretBox:
    """ISV_SECRET_KEYS="kid:base64key,..." (16, 24 or 32 bytes each); the first key seals."""
    keys = Env(source).keyring("ISV_SECRET_KEYS", f"dev:{_DEV_KEY}")
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


def isv_part(db: Database, source: Mapping[str, str] | None = None) -> IsvPart:
    return IsvPart(IsvServicer(db, secret_box_from_env(source)))
