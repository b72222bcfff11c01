"""App secrets sealed with AES-GCM.

An MD5 request signature can only be verified with the plaintext secret, so the secret cannot be
stored as a one-way hash: it is encrypted with a key from a keyring (the first key seals, every
key opens, so keys rotate), and the app key is bound in as associated data so a ciphertext moved
to another app's row does not open.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class SealError(RuntimeError):
    """A sealed secret cannot be opened (unknown key id or tampered ciphertext)."""


@dataclass(frozen=True)
class Sealed:
    key_id: str
    nonce: bytes
    ciphertext: bytes

    def __repr__(self) -> str:  # never print key material or ciphertext in logs
        return f"Sealed(key_id={self.key_id!r})"


class SecretBox:
    def __init__(self, keys: dict[str, bytes]) -> None:
        if not keys:
            raise ValueError("the secret keyring needs at least one key")
        for kid, key in keys.items():
            if len(key) not in (16, 24, 32):
                raise ValueError(f"secret key {kid!r} must be 16, 24 or 32 bytes for AES-GCM")
        self._keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self._sealing_kid = next(iter(keys))

    def __repr__(self) -> str:
        return f"SecretBox(key_ids={list(self._keys)!r})"

    def seal(self, plaintext: str, *, bound_to: str) -> Sealed:
        nonce = os.urandom(12)
        ciphertext = self._keys[self._sealing_kid].encrypt(nonce, plaintext.encode(),
                                                           bound_to.encode())
        return Sealed(self._sealing_kid, nonce, ciphertext)

    def open(self, sealed: Sealed, *, bound_to: str) -> str:
        aead = self._keys.get(sealed.key_id)
        if aead is None:
            raise SealError(f"secret sealed with unknown key id {sealed.key_id!r}")
        try:
            return aead.decrypt(sealed.nonce, sealed.ciphertext, bound_to.encode()).decode()
        except InvalidTag:
            raise SealError("sealed secret does not open (tampered or wrong key)") from None
