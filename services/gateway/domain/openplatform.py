"""The JOS-compatible open-platform wire protocol, free of I/O.

Signatures, timestamps, system parameters, the `_responce` / `error_response` envelopes and the
error codes we answer with. See docs/open-platform.md.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

SIGN_PARAM = "sign"
JSON_PARAM = "360buy_param_json"
SUPPORTED_VERSION = "2.0"
# The marketplace refuses requests whose timestamp is further than this from its clock.
TIMESTAMP_WINDOW = timedelta(minutes=6)
# Clients that send no offset mean Beijing time.
DEFAULT_OFFSET = timezone(timedelta(hours=8))
MAX_BODY_BYTES = 64 * 1024
MAX_PARAM_JSON_CHARS = 32 * 1024

_TIMESTAMP = re.compile(
    r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?(?:([+-])(\d{2}):?(\d{2}))?$")


@dataclass(frozen=True)
class ErrorCode:
    code: str
    zh_desc: str
    en_desc: str


class ProtocolError(Exception):
    """A request the platform refuses before (or instead of) calling a method."""

    def __init__(self, error: ErrorCode, detail: str = "") -> None:
        super().__init__(error.en_desc + (f": {detail}" if detail else ""))
        self.error = error
        self.detail = detail

    def body(self) -> dict[str, Any]:
        en = self.error.en_desc + (f": {self.detail}" if self.detail else "")
        return {"error_response": {"code": self.error.code, "zh_desc": self.error.zh_desc,
                                   "en_desc": en}}


# The marketplace's public system codes ...
SERVICE_UNAVAILABLE = ErrorCode("1", "服务暂时不可用", "service temporarily unavailable")
CALL_LIMIT = ErrorCode("2", "调用次数超限", "call limit exceeded")
MISSING_VERSION = ErrorCode("4", "缺少版本参数", "missing version")
UNSUPPORTED_VERSION = ErrorCode("5", "不支持的版本号", "unsupported version")
MISSING_TIMESTAMP = ErrorCode("7", "缺少时间戳参数", "missing timestamp")
INVALID_TIMESTAMP = ErrorCode("8", "非法的时间戳参数", "invalid timestamp")
MISSING_SIGN = ErrorCode("11", "缺少签名参数", "missing sign")
INVALID_SIGN = ErrorCode("12", "无效签名", "invalid sign")
MISSING_METHOD = ErrorCode("14", "缺少方法名参数", "missing method")
INVALID_METHOD = ErrorCode("15", "不存在的方法名", "invalid method")
INVALID_ACCESS_TOKEN = ErrorCode("19", "无效的access_token", "invalid access_token")
INVALID_APP_KEY = ErrorCode("21", "无效的app_key", "invalid app_key")
# ... and ours, for cases whose codes the marketplace does not publish.
MISSING_ACCESS_TOKEN = ErrorCode("1001", "缺少access_token参数", "missing access_token")
METHOD_NOT_GRANTED = ErrorCode("1002", "应用未获授权调用该方法",
                               "the app is not granted this method's scope")
INVALID_PARAMETER = ErrorCode("1003", "参数错误", "invalid parameter")
UNSUPPORTED_FORMAT = ErrorCode("1004", "不支持的格式", "unsupported format")
REQUEST_IN_PROGRESS = ErrorCode("1005", "相同请求正在处理中",
                                "the same signed request is still being processed")
APP_SUSPENDED = ErrorCode("1006", "应用已停用", "the app is suspended")

ERROR_CODES: tuple[ErrorCode, ...] = (
    SERVICE_UNAVAILABLE, CALL_LIMIT, MISSING_VERSION, UNSUPPORTED_VERSION, MISSING_TIMESTAMP,
    INVALID_TIMESTAMP, MISSING_SIGN, INVALID_SIGN, MISSING_METHOD, INVALID_METHOD,
    INVALID_ACCESS_TOKEN, INVALID_APP_KEY, MISSING_ACCESS_TOKEN, METHOD_NOT_GRANTED,
    INVALID_PARAMETER, UNSUPPORTED_FORMAT, REQUEST_IN_PROGRESS, APP_SUSPENDED,
)


def sign_base(secret: str, params: Mapping[str, str]) -> str:
    """secret + key1value1key2value2... (keys sorted, `sign` left out) + secret."""
    body = "".join(f"{key}{params[key]}" for key in sorted(params) if key != SIGN_PARAM)
    return f"{secret}{body}{secret}"


def compute_sign(secret: str, params: Mapping[str, str], encoding: str = "utf-8") -> str:
    return hashlib.md5(sign_base(secret, params).encode(encoding)).hexdigest().upper()


def sign_matches(secret: str, params: Mapping[str, str], received: str) -> bool:
    """Verified over UTF-8; a client that signed the latin-1 bytes (the official SDK does) of
    text that latin-1 can encode is accepted too, since both describe the same text."""
    received = received.strip().upper()
    if not received.isascii():  # no sign has other characters (compare_digest would raise)
        return False
    candidates = [compute_sign(secret, params)]
    base = sign_base(secret, params)
    try:
        latin = hashlib.md5(base.encode("latin-1")).hexdigest().upper()
    except UnicodeEncodeError:
        latin = ""
    if latin and latin != candidates[0]:
        candidates.append(latin)
    return any(hmac.compare_digest(candidate, received) for candidate in candidates)


def parse_timestamp(raw: str) -> datetime:
    """`%Y-%m-%d %H:%M:%S.000%z` (the official SDK) or `%Y-%m-%d %H:%M:%S` (UTC+8)."""
    match = _TIMESTAMP.match(raw.strip())
    if not match:
        raise ProtocolError(INVALID_TIMESTAMP, "expected 'YYYY-MM-DD HH:MM:SS[.fff][+HHMM]'")
    stamp, fraction, sign, hours, minutes = match.groups()
    try:
        value = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
        offset = DEFAULT_OFFSET
        if sign:
            delta = timedelta(hours=int(hours), minutes=int(minutes))
            if delta > timedelta(hours=14):
                raise ValueError("offset out of range")
            offset = timezone(delta if sign == "+" else -delta)
    except ValueError:
        raise ProtocolError(INVALID_TIMESTAMP, "not a real date and time") from None
    micros = int((fraction or "0").ljust(6, "0"))
    return value.replace(tzinfo=offset, microsecond=micros).astimezone(UTC)


def check_timestamp(raw: str, now: datetime) -> datetime:
    stamp = parse_timestamp(raw)
    if abs(now - stamp) > TIMESTAMP_WINDOW:
        raise ProtocolError(INVALID_TIMESTAMP, "timestamp is outside the 6-minute window")
    return stamp


def response_key(method: str) -> str:
    """`brandclub.member.get` -> `brandclub_member_get_responce` (the marketplace's spelling)."""
    return method.replace(".", "_") + "_responce"


def result_key(method: str) -> str:
    """The result sits in a field named after the method's last segment."""
    return method.rsplit(".", 1)[-1] + "_result"


def success_envelope(method: str, result: dict[str, Any]) -> dict[str, Any]:
    return {response_key(method): {"code": "0", result_key(method): result}}


def business_result(data: dict[str, Any]) -> dict[str, Any]:
    return {"success": True, "code": "OK", "message": "", "data": data}


def business_failure(reason: str, message: str, details: Mapping[str, str]) -> dict[str, Any]:
    """A method's own failure: reported inside the result, with the envelope's code "0"."""
    return {"success": False, "code": reason, "message": message, "details": dict(details),
            "data": None}
