"""Composition root of the identity service."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

import grpc

from brandclub.identity.v1 import identity_service_pb2 as pb
from brandclub.identity.v1 import identity_service_pb2_grpc as pb_grpc
from libs.config import ConfigError, Env
from libs.db import Database
from libs.jobs import Loop, background_loop
from libs.outbox import OutboxRelay
from libs.service import Composition, Resources, run_service
from services.identity import usecases
from services.identity.api.servicer import IdentityServicer
from services.identity.domain.phones import PhoneMatcher, PhoneVault
from services.identity.domain.tokens import TokenCodec
from services.identity.isv.composition import isv_part

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["IdentityService"].full_name

# Development secrets, used only when the variables are unset (never in a real deployment).
_DEV_VAULT_KEY = base64.b64encode(b"brandclub-dev-phone-vault-key-32").decode()
_DEV_PEPPER = base64.b64encode(b"brandclub-dev-phone-match-pepper").decode()
RESEAL_INTERVAL_SECONDS = 60.0


def phone_secrets(source: Mapping[str, str] | None = None) -> tuple[PhoneVault, PhoneMatcher]:
    """PHONE_VAULT_KEYS ("kid:base64key,...", the first seals; AES keys of 16/24/32 bytes) and
    PHONE_MATCH_PEPPER (base64, at least 16 bytes: the root of every brand's matching key)."""
    env = Env(source)
    keys = env.keyring("PHONE_VAULT_KEYS", f"dev:{_DEV_VAULT_KEY}")
    raw_pepper = env.text("PHONE_MATCH_PEPPER", _DEV_PEPPER)
    try:
        pepper = base64.b64decode(raw_pepper, validate=True)
    except binascii.Error:
        raise ConfigError("PHONE_MATCH_PEPPER must be base64") from None
    try:
        return PhoneVault(keys, pepper), PhoneMatcher(pepper)
    except ValueError as exc:
        raise ConfigError(f"PHONE_VAULT_KEYS / PHONE_MATCH_PEPPER: {exc}") from None


def reseal_loop(db: Database, vault: PhoneVault) -> Loop:
    """After a key rotation, re-encrypt the numbers sealed with older keys, batch by batch."""
    async def reseal_batch() -> int:
        async with db.transaction() as conn:
            return await usecases.reseal_phones(conn, vault)

    return background_loop("phone-reseal", reseal_batch,
                           interval_seconds=RESEAL_INTERVAL_SECONDS, batch=1)


async def compose(resources: Resources) -> Composition:
    vault, matcher = phone_secrets()
    servicer = IdentityServicer(resources.db, TokenCodec(resources.settings.token_keys), vault,
                                matcher)
    relay = OutboxRelay(resources.db, resources.redis)
    isv = isv_part(resources.db)

    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_IdentityServiceServicer_to_server(servicer, server)
        isv.register(server)

    return Composition(service_names=[SERVICE_NAME, isv.service_name], register=register,
                       background=[relay.run, reseal_loop(resources.db, vault)])


def main() -> None:
    run_service("identity", compose)
