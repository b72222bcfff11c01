"""Per-brand provider credentials sealed with AES-GCM (key: MESSAGING_CREDENTIALS_KEY, read by
services/messaging/settings.py)."""

from __future__ import annotations

import json
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libs.config import ConfigError

KEY_VARIABLE = "MESSAGING_CREDENTIALS_KEY"


class CredentialCipher:
    """Seals a {name: secret} map; the brand id is bound in as associated data, so a sealed
    blob copied to another brand's row does not open."""

    def __init__(self, key: bytes) -> None:
        if len(key) not in (16, 24, 32):
            raise ConfigError(f"{KEY_VARIABLE} must decode to 16, 24 or 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, brand_id: str, credentials: dict[str, str]) -> bytes:
        nonce = os.urandom(12)
        plaintext = json.dumps(credentials, sort_keys=True).encode()
        return nonce + self._aead.encrypt(nonce, plaintext, brand_id.encode())

    def open(self, brand_id: str, sealed: bytes) -> dict[str, str]:
        nonce, ciphertext = sealed[:12], sealed[12:]
        opened: dict[str, str] = json.loads(self._aead.decrypt(nonce, ciphertext,
                                                               brand_id.encode()))
        return opened
