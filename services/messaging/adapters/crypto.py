"""Per-brand provider credentials sealed with AES-GCM (key from MESSAGING_CREDENTIALS_KEY)."""

from __future__ import annotations

import base64
import json
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libs.config import ConfigError, Env

KEY_VARIABLE = "MESSAGING_CREDENTIALS_KEY"
# Only for local runs: a fixed development key, like the token keys' development default.
_DEV_KEY = base64.b64encode(b"brandclub-dev-credentials-key-32").decode()


class CredentialCipher:
    """Seals a {name: secret} map; the brand id is bound in as associated data, so a sealed
    blob copied to another brand's row does not open."""

    def __init__(self, key: bytes) -> None:
        if len(key) not in (16, 24, 32):
            raise ConfigError(f"{KEY_VARIABLE} must decode to 16, 24 or 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_env(cls, env: Env | None = None) -> CredentialCipher:
        raw = (env or Env()).text(KEY_VARIABLE, _DEV_KEY)
        try:
            key = base64.b64decode(raw, validate=True)
        except ValueError:
            raise ConfigError(f"{KEY_VARIABLE} is not valid base64") from None
        return cls(key)

    def seal(self, brand_id: str, credentials: dict[str, str]) -> bytes:
        nonce = os.urandom(12)
        plaintext = json.dumps(credentials, sort_keys=True).encode()
        return nonce + self._aead.encrypt(nonce, plaintext, brand_id.encode())

    def open(self, brand_id: str, sealed: bytes) -> dict[str, str]:
        nonce, ciphertext = sealed[:12], sealed[12:]
        opened: dict[str, str] = json.loads(self._aead.decrypt(nonce, ciphertext,
                                                               brand_id.encode()))
        return opened
