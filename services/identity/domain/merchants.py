"""Merchant users: one brand each; passwords kept as scrypt hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from libs.errors import InvalidArgument, require

_LOGIN = re.compile(r"^[A-Za-z0-9_\-.@]{3,64}$")
_BRAND_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 256
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True)
class MerchantUser:
    merchant_user_id: str
    brand_id: str
    login_name: str
    display_name: str
    disabled: bool
    created_at: datetime


def new_merchant_user_id() -> str:
    return f"mus_{uuid.uuid4().hex}"


def valid_brand_id(value: str) -> str:
    value = require(value, "brand_id")
    if not _BRAND_ID.match(value):
        raise InvalidArgument("brand_id must be 1-64 letters, digits, _ or -", field="brand_id")
    return value


def valid_login_name(value: str) -> str:
    value = require(value, "login_name")
    if not _LOGIN.match(value):
        raise InvalidArgument("login_name must be 3-64 letters, digits or _-.@",
                              field="login_name")
    return value.lower()


def valid_display_name(value: str) -> str:
    value = require(value, "display_name")
    if len(value) > 100:
        raise InvalidArgument("display_name must be at most 100 characters",
                              field="display_name", reason="NAME_TOO_LONG")
    return value


def hash_password(password: str) -> str:
    """"" for no password; else "scrypt$<salt>$<hash>"."""
    if not password:
        return ""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidArgument(f"password must be {MIN_PASSWORD}-{MAX_PASSWORD} characters",
                              field="password", reason="PASSWORD_TOO_SHORT"
                              if len(password) < MIN_PASSWORD else "PASSWORD_TOO_LONG")
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return (f"scrypt${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


def password_matches(password: str, stored: str) -> bool:
    # NUL: HMAC pads short keys with zero bytes, so "pw" and "pw\0" would hash alike.
    if not stored or not password or len(password) > MAX_PASSWORD or "\x00" in password:
        return False
    try:
        scheme, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), **_SCRYPT)
    except ValueError:
        return False
    return scheme == "scrypt" and hmac.compare_digest(actual, expected)
