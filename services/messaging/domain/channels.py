"""Channels, purposes, providers and the rules of configuring them."""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from libs.errors import InvalidArgument


class Channel(enum.Enum):
    INBOX = "inbox"
    SMS = "sms"
    WECHAT = "wechat"


class Purpose(enum.Enum):
    SERVICE = "service"
    MARKETING = "marketing"


class ProviderKind(enum.Enum):
    SANDBOX = "sandbox"
    ALIYUN_SMS = "aliyun_sms"
    WECHAT_OA = "wechat_oa"


# Which providers may serve which channel, and the credentials / settings each one needs.
_PROVIDERS: dict[Channel, tuple[ProviderKind, ...]] = {
    Channel.INBOX: (),
    Channel.SMS: (ProviderKind.SANDBOX, ProviderKind.ALIYUN_SMS),
    Channel.WECHAT: (ProviderKind.SANDBOX, ProviderKind.WECHAT_OA),
}
_REQUIRED_CREDENTIALS: dict[ProviderKind, tuple[str, ...]] = {
    ProviderKind.SANDBOX: (),
    ProviderKind.ALIYUN_SMS: ("access_key_id", "access_key_secret"),
    ProviderKind.WECHAT_OA: ("app_secret",),
}
_REQUIRED_SETTINGS: dict[ProviderKind, tuple[str, ...]] = {
    ProviderKind.SANDBOX: (),
    ProviderKind.ALIYUN_SMS: ("sign_name",),
    ProviderKind.WECHAT_OA: ("app_id",),
}
_ALLOWED_SETTINGS: dict[ProviderKind, tuple[str, ...]] = {
    ProviderKind.SANDBOX: ("app_id", "sign_name"),
    ProviderKind.ALIYUN_SMS: ("sign_name", "endpoint", "region_id"),
    ProviderKind.WECHAT_OA: ("app_id", "endpoint"),
}
_ENDPOINT = re.compile(r"^https?://[A-Za-z0-9.\-:\[\]]+/?$")


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Consent:
    """A member's decision on messages of one purpose over one channel."""

    brand_id: str
    account_id: str
    channel: Channel
    purpose: Purpose
    granted: bool
    source: str
    updated_at: datetime


@dataclass(frozen=True)
class ChannelConfig:
    brand_id: str
    channel: Channel
    provider: ProviderKind
    settings: dict[str, str]
    credential_names: list[str]
    updated_at: datetime
    # Decrypted only inside the dispatcher, never returned by an RPC.
    credentials: dict[str, str] = field(default_factory=dict, repr=False)


def validate_channel_config(channel: Channel, provider: ProviderKind, settings: dict[str, str],
                            credentials: dict[str, str]) -> None:
    """Refuse a provider that cannot serve the channel, or missing / unknown fields."""
    if channel is Channel.INBOX:
        raise InvalidArgument("the message box needs no provider", field="channel",
                              reason="CHANNEL_NOT_CONFIGURABLE")
    if provider not in _PROVIDERS[channel]:
        raise InvalidArgument(f"provider {provider.value} cannot send {channel.value}",
                              field="provider", reason="PROVIDER_CHANNEL_MISMATCH")
    for name in _REQUIRED_CREDENTIALS[provider]:
        if not credentials.get(name, "").strip():
            raise InvalidArgument(f"credential {name} is required for {provider.value}",
                                  field=f"credentials.{name}", reason="CREDENTIAL_REQUIRED")
    secret = credentials.get("receipt_secret")
    if secret is not None and len(secret.strip()) < 32:
        raise InvalidArgument("receipt_secret must be at least 32 characters",
                              field="credentials.receipt_secret", reason="SECRET_TOO_SHORT")
    for name in credentials:
        if name not in (*_REQUIRED_CREDENTIALS[provider], "receipt_secret"):
            raise InvalidArgument(f"credential {name} is not used by {provider.value}",
                                  field=f"credentials.{name}", reason="UNKNOWN_CREDENTIAL")
    for name in _REQUIRED_SETTINGS[provider]:
        if not settings.get(name, "").strip():
            raise InvalidArgument(f"setting {name} is required for {provider.value}",
                                  field=f"settings.{name}", reason="SETTING_REQUIRED")
    for name, value in settings.items():
        if name not in _ALLOWED_SETTINGS[provider]:
            raise InvalidArgument(f"setting {name} is not used by {provider.value}",
                                  field=f"settings.{name}", reason="UNKNOWN_SETTING")
        if name == "endpoint" and not _ENDPOINT.match(value):
            raise InvalidArgument("endpoint must be an http(s) origin, e.g. "
                                  "https://dysmsapi.aliyuncs.com", field="settings.endpoint",
                                  reason="INVALID_ENDPOINT")


def mask_phone(phone: str) -> str:
    """+8613812345678 -> 138****5678: enough to recognise, useless to misuse."""
    digits = phone[-11:] if phone.startswith("+86") else phone.lstrip("+")
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


def mask_openid(openid: str) -> str:
    return f"{openid[:4]}...{openid[-2:]}" if len(openid) > 8 else "****"
