"""Provider adapters: real HTTP clients of the SMS and WeChat APIs, and a recording sandbox.

- Aliyun SMS: `SendSms` of dysmsapi (API version 2017-05-25), RPC-style request signed with
  signature version 1.0 (HMAC-SHA1 over the canonicalised query, secret + "&").
- WeChat official accounts: `GET /cgi-bin/token` (client_credential) and
  `POST /cgi-bin/message/template/send?access_token=...`; the token is cached per app in Redis
  and fetched again when WeChat says it expired.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

from libs.clock import Clock, system_clock
from libs.db import Database
from libs.redis import Redis
from services.messaging.domain.channels import (
    Channel,
    ChannelConfig,
    ProviderKind,
    mask_openid,
    mask_phone,
    new_id,
)
from services.messaging.domain.templates import Rendered

ALIYUN_ENDPOINT = "https://dysmsapi.aliyuncs.com"
WECHAT_ENDPOINT = "https://api.weixin.qq.com"
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass(frozen=True)
class Delivery:
    message_id: str
    brand_id: str
    channel: Channel
    address: str
    content: Rendered
    provider_template_code: str
    link_url: str


@dataclass(frozen=True)
class SendOutcome:
    accepted: bool
    provider_message_id: str = ""
    error_code: str = ""
    retryable: bool = False


class Provider(Protocol):
    async def send(self, config: ChannelConfig, delivery: Delivery) -> SendOutcome: ...


def percent_encode(value: str) -> str:
    """Aliyun's POP encoding: RFC 3986 unreserved characters kept, everything else %XX."""
    return quote(value, safe="-_.~")


def aliyun_signature(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}"
                         for k, v in sorted(params.items()))
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def aliyun_phone(phone_e164: str) -> str:
    """Mainland numbers go without the country code; others as digits with it (no '+')."""
    if phone_e164.startswith("+86"):
        return phone_e164[3:]
    return phone_e164.lstrip("+")


# Aliyun codes that a later attempt may get past (flow control, provider trouble).
_ALIYUN_RETRYABLE = {"isv.BUSINESS_LIMIT_CONTROL", "Throttling.User", "isp.SYSTEM_ERROR",
                     "isp.RAM_PERMISSION_DENY", "SignatureNonceUsed", "ServiceUnavailable"}


class AliyunSmsProvider:
    def __init__(self, session: aiohttp.ClientSession,
                 clock: Clock = system_clock) -> None:
        self._session = session
        self._clock = clock

    def request_params(self, config: ChannelConfig, delivery: Delivery) -> dict[str, str]:
        params = {
            "AccessKeyId": config.credentials["access_key_id"],
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": delivery.message_id,
            "PhoneNumbers": aliyun_phone(delivery.address),
            "RegionId": config.settings.get("region_id", "cn-hangzhou"),
            "SignName": config.settings["sign_name"],
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "TemplateCode": delivery.provider_template_code,
            "Timestamp": self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
        }
        if delivery.content.params:
            params["TemplateParam"] = json.dumps(delivery.content.params, ensure_ascii=False,
                                                 separators=(",", ":"))
        params["Signature"] = aliyun_signature(params, config.credentials["access_key_secret"])
        return params

    async def send(self, config: ChannelConfig, delivery: Delivery) -> SendOutcome:
        endpoint = config.settings.get("endpoint", ALIYUN_ENDPOINT).rstrip("/")
        try:
            async with self._session.post(f"{endpoint}/",
                                          data=self.request_params(config, delivery),
                                          timeout=HTTP_TIMEOUT) as response:
                if response.status >= 500:
                    return SendOutcome(False, error_code=f"HTTP_{response.status}",
                                       retryable=True)
                body: dict[str, Any] = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return SendOutcome(False, error_code=f"TRANSPORT_{type(exc).__name__}",
                               retryable=True)
        code = str(body.get("Code", ""))
        if code == "OK":
            return SendOutcome(True, provider_message_id=str(body.get("BizId", "")))
        return SendOutcome(False, error_code=code or "UNKNOWN",
                           retryable=code in _ALIYUN_RETRYABLE)


# WeChat errcodes: token no longer valid / a later attempt may pass.
_WECHAT_TOKEN_ERRORS = {40001, 40014, 42001}
_WECHAT_RETRYABLE = {-1, 45009, 45047}


class WeChatTemplateProvider:
    def __init__(self, session: aiohttp.ClientSession, redis: Redis) -> None:
        self._session = session
        self._redis = redis

    @staticmethod
    def _token_key(brand_id: str, app_id: str) -> str:
        return f"brandclub:messaging:{{{brand_id}}}:wechat_token:{app_id}"

    async def _token(self, config: ChannelConfig, *, fresh: bool) -> str | SendOutcome:
        endpoint = config.settings.get("endpoint", WECHAT_ENDPOINT).rstrip("/")
        app_id = config.settings["app_id"]
        key = self._token_key(config.brand_id, app_id)
        if not fresh:
            cached = await self._redis.get(key)
            if cached:
                return cached.decode() if isinstance(cached, bytes) else str(cached)
        params = {"grant_type": "client_credential", "appid": app_id,
                  "secret": config.credentials["app_secret"]}
        try:
            async with self._session.get(f"{endpoint}/cgi-bin/token", params=params,
                                         timeout=HTTP_TIMEOUT) as response:
                body: dict[str, Any] = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return SendOutcome(False, error_code=f"TRANSPORT_{type(exc).__name__}",
                               retryable=True)
        token = body.get("access_token")
        if not token:
            errcode = int(body.get("errcode", -1))
            return SendOutcome(False, error_code=f"WECHAT_{errcode}",
                               retryable=errcode in _WECHAT_RETRYABLE)
        # Refresh five minutes early: a token used at its last second fails mid-flight.
        ttl = max(60, int(body.get("expires_in", 7200)) - 300)
        await self._redis.set(key, str(token), ex=ttl)
        return str(token)

    async def send(self, config: ChannelConfig, delivery: Delivery) -> SendOutcome:
        endpoint = config.settings.get("endpoint", WECHAT_ENDPOINT).rstrip("/")
        payload = {
            "touser": delivery.address,
            "template_id": delivery.provider_template_code,
            "data": {key: {"value": value} for key, value in delivery.content.params.items()},
        }
        if delivery.link_url:
            payload["url"] = delivery.link_url
        for fresh in (False, True):
            token = await self._token(config, fresh=fresh)
            if isinstance(token, SendOutcome):
                return token
            try:
                async with self._session.post(
                        f"{endpoint}/cgi-bin/message/template/send",
                        params={"access_token": token}, json=payload,
                        timeout=HTTP_TIMEOUT) as response:
                    body: dict[str, Any] = await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                return SendOutcome(False, error_code=f"TRANSPORT_{type(exc).__name__}",
                                   retryable=True)
            errcode = int(body.get("errcode", 0))
            if errcode == 0:
                return SendOutcome(True, provider_message_id=str(body.get("msgid", "")))
            if errcode in _WECHAT_TOKEN_ERRORS and not fresh:
                continue  # the cached token went stale: fetch a new one and try once more
            return SendOutcome(False, error_code=f"WECHAT_{errcode}",
                               retryable=errcode in _WECHAT_RETRYABLE)
        return SendOutcome(False, error_code="WECHAT_TOKEN_REJECTED", retryable=True)


class SandboxProvider:
    """Sends nothing: records what would have been sent, with the address masked."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock

    async def send(self, config: ChannelConfig, delivery: Delivery) -> SendOutcome:
        masked = (mask_phone(delivery.address) if delivery.channel is Channel.SMS
                  else mask_openid(delivery.address))
        delivery_id = new_id("sbx")
        await self._db.execute(
            "INSERT INTO sandbox_deliveries (delivery_id, brand_id, channel, message_id, "
            "masked_address, title, body, params, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            delivery_id, delivery.brand_id, delivery.channel.value, delivery.message_id, masked,
            delivery.content.title, delivery.content.body, json.dumps(delivery.content.params),
            self._clock())
        return SendOutcome(True, provider_message_id=delivery_id)


class ProviderRegistry:
    def __init__(self, providers: Mapping[ProviderKind, Provider]) -> None:
        self._providers = dict(providers)

    def for_kind(self, kind: ProviderKind) -> Provider:
        return self._providers[kind]
