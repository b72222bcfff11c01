"""Phone numbers: normalisation to E.164, the vault's authenticated encryption, and the
published per-brand matching rule.

Vault: AES-256-GCM with a random 96-bit nonce; the key version (kid) is stored beside the
ciphertext and bound into it as associated data together with the account id, so a ciphertext
cannot be moved to another account. New numbers are sealed with the first key of the keyring;
every key opens, so keys rotate by putting the new one first and re-sealing (`reseal`).

Matching (connected brands): the brand's key is HKDF-SHA256(pepper, salt, info=brand id), and
the encrypted phone is the lower-case hex HMAC-SHA256(key, E.164 number as ASCII). A plain hash
of the 10^10 Chinese mobile number space is reversed in minutes; a keyed one is not.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from libs.errors import FailedPrecondition, InvalidArgument, require

MATCH_KEY_VERSION = "v1"
MATCH_KEY_SALT = b"brandclub-phone-match-v1"
MATCH_RULE = (
    "encrypted_phone = lower-case hex of HMAC-SHA256(key, phone), where key is the brand's "
    "32-byte matching key (base64-decoded) and phone is the number in E.164 as ASCII, e.g. "
    "'+8613812345678' (mainland China mobiles: '+86' followed by the 11 digits)"
)

_SEPARATORS = re.compile(r"[\s\-().]")
_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def normalise_phone(raw: str, field: str = "phone") -> str:
    """E.164 from common notations; an 11-digit number starting with 1 is a mainland mobile."""
    text = _SEPARATORS.sub("", require(raw, field))
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+"):
        if _CN_MOBILE.match(text):
            text = "+86" + text
        elif text.startswith("86") and _CN_MOBILE.match(text[2:]):
            text = "+" + text
        else:
            raise InvalidArgument("phone is not a recognisable number; give it with its "
                                  "country code, e.g. +8613812345678", field=field,
                                  reason="PHONE_INVALID")
    if not _E164.match(text):
        raise InvalidArgument("phone is not a valid E.164 number", field=field,
                              reason="PHONE_INVALID")
    if text.startswith("+86") and not _CN_MOBILE.match(text[3:]):
        raise InvalidArgument("phone is not a valid mainland China mobile number",
                              field=field, reason="PHONE_INVALID")
    return text


def mask_phone(e164: str) -> str:
    """For showing the shopper their own number: "+86 138****5678"."""
    if e164.startswith("+86") and len(e164) == 14:
        local = e164[3:]
        return f"+86 {local[:3]}****{local[-4:]}"
    return f"{e164[:3]}****{e164[-4:]}"


def valid_vault_keys(keys: dict[str, bytes]) -> dict[str, bytes]:
    if not keys:
        raise ValueError("the phone vault needs at least one key")
    for kid, key in keys.items():
        if len(key) not in (16, 24, 32):
            raise ValueError(f"phone vault key {kid!r} must be 16, 24 or 32 bytes")
    return dict(keys)


@dataclass(frozen=True)
class Sealed:
    key_version: str
    nonce: bytes
    ciphertext: bytes


class PhoneVault:
    """Seals and opens E.164 numbers; a keyed fingerprint compares them without opening."""

    def __init__(self, keys: dict[str, bytes], pepper: bytes) -> None:
        self._keys = valid_vault_keys(keys)
        self._current = next(iter(self._keys))
        self._fingerprint_key = _hkdf(pepper, b"brandclub-phone-fingerprint-v1", b"vault")

    @property
    def current_version(self) -> str:
        return self._current

    @staticmethod
    def _aad(account_id: str, kid: str) -> bytes:
        return f"phone:{account_id}:{kid}".encode()

    def seal(self, account_id: str, e164: str) -> Sealed:
        nonce = os.urandom(12)
        cipher = AESGCM(self._keys[self._current])
        return Sealed(self._current, nonce,
                      cipher.encrypt(nonce, e164.encode(), self._aad(account_id, self._current)))

    def open(self, account_id: str, sealed: Sealed) -> str:
        key = self._keys.get(sealed.key_version)
        if key is None:
            raise FailedPrecondition("the phone was sealed with a key that is no longer "
                                     "configured", reason="PHONE_KEY_UNAVAILABLE",
                                     metadata={"key_version": sealed.key_version})
        try:
            plain = AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext,
                                        self._aad(account_id, sealed.key_version))
        except InvalidTag:
            raise FailedPrecondition("the stored phone failed authentication",
                                     reason="PHONE_CIPHERTEXT_INVALID") from None
        return plain.decode()

    def fingerprint(self, e164: str) -> bytes:
        return hmac.new(self._fingerprint_key, e164.encode(), hashlib.sha256).digest()


def _hkdf(secret: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(secret)


class PhoneMatcher:
    """Per-brand matching keys derived from the platform's pepper."""

    def __init__(self, pepper: bytes) -> None:
        if len(pepper) < 16:
            raise ValueError("the phone match pepper must be at least 16 bytes")
        self._pepper = pepper

    def brand_key(self, brand_id: str) -> bytes:
        return _hkdf(self._pepper, MATCH_KEY_SALT, brand_id.encode())

    def encrypted_phone(self, brand_id: str, e164: str) -> bytes:
        return hmac.new(self.brand_key(brand_id), e164.encode(), hashlib.sha256).digest()
