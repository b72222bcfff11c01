"""The identity service's settings: the common ones plus its secrets, read once at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from libs.config import Env, Settings, load_settings


@dataclass(frozen=True)
class IdentitySettings:
    common: Settings
    # TOKEN_SIGNING_KEYS: the first key signs shopper and merchant tokens, every key verifies.
    token_keys: dict[str, bytes] = field(repr=False)
    # PHONE_VAULT_KEYS: the first key seals phone numbers, every key opens them.
    phone_vault_keys: dict[str, bytes] = field(repr=False)
    # PHONE_MATCH_PEPPER: the root of every brand's phone-matching key.
    phone_match_pepper: bytes = field(repr=False)
    # ISV_SECRET_KEYS: the first key seals ISV app secrets, every key opens them.
    isv_secret_keys: dict[str, bytes] = field(repr=False)


def identity_settings(common: Settings) -> IdentitySettings:
    """The identity settings, read from the same variables as `common`."""
    env = Env(common.environment)
    return IdentitySettings(
        common=common,
        token_keys=env.secret_keyring("TOKEN_SIGNING_KEYS"),
        phone_vault_keys=env.secret_keyring("PHONE_VAULT_KEYS"),
        phone_match_pepper=env.secret("PHONE_MATCH_PEPPER"),
        isv_secret_keys=env.secret_keyring("ISV_SECRET_KEYS"),
    )


def load_identity_settings(source: Mapping[str, str] | None = None) -> IdentitySettings:
    return identity_settings(load_settings("identity", source))
