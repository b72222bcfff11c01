"""Composition root of the identity service."""

from __future__ import annotations

import grpc

from brandclub.identity.v1 import identity_service_pb2 as pb
from brandclub.identity.v1 import identity_service_pb2_grpc as pb_grpc
from brandclub.identity.v1 import member_data_service_pb2 as privacy_pb
from brandclub.identity.v1 import member_data_service_pb2_grpc as privacy_grpc
from libs import privacy_api
from libs.config import ConfigError
from libs.jobs import Loop, background_loop
from libs.outbox import OutboxRelay
from libs.service import Composition, Resources, run_service
from services.identity.api.servicer import IdentityServicer
from services.identity.domain.phones import PhoneMatcher, PhoneVault
from services.identity.domain.tokens import TokenCodec
from services.identity.isv.composition import isv_part
from services.identity.settings import IdentitySettings, identity_settings
from services.identity.usecases.context import IdentityContext
from services.identity.usecases.phones import reseal_phones
from services.identity.usecases.privacy import member_privacy

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["IdentityService"].full_name

RESEAL_INTERVAL_SECONDS = 60.0


def phone_secrets(settings: IdentitySettings) -> tuple[PhoneVault, PhoneMatcher]:
    """The vault (PHONE_VAULT_KEYS, the first seals) and the matcher (PHONE_MATCH_PEPPER)."""
    keys, pepper = settings.phone_vault_keys, settings.phone_match_pepper
    try:
        return PhoneVault(keys, pepper), PhoneMatcher(pepper)
    except ValueError as exc:
        raise ConfigError(f"PHONE_VAULT_KEYS / PHONE_MATCH_PEPPER: {exc}") from None


def reseal_loop(ctx: IdentityContext) -> Loop:
    """After a key rotation, re-encrypt the numbers sealed with older keys, batch by batch."""
    return background_loop("phone-reseal", lambda: reseal_phones(ctx),
                           interval_seconds=RESEAL_INTERVAL_SECONDS, batch=1)


async def compose(resources: Resources) -> Composition:
    settings = identity_settings(resources.settings)
    vault, matcher = phone_secrets(settings)
    ctx = IdentityContext(resources.db, TokenCodec(settings.token_keys), vault, matcher)
    servicer = IdentityServicer(ctx)
    relay = OutboxRelay(resources.db, resources.redis)
    isv = isv_part(resources.db, settings.isv_secret_keys)

    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_IdentityServiceServicer_to_server(servicer, server)
        isv.register(server)
        privacy_api.register(server, member_privacy(resources.db), privacy_pb, privacy_grpc)

    return Composition(service_names=[SERVICE_NAME, isv.service_name,
                                      *privacy_api.service_names(privacy_pb)],
                       register=register,
                       background=[relay.run, reseal_loop(ctx)])


def main() -> None:
    run_service("identity", compose)
