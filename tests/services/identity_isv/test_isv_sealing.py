"""Unit tests of the open-platform domain: sealed secrets and scope rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from libs.errors import InvalidArgument
from services.identity.isv.domain.apps import App, AppStatus, granted_scopes, valid_scopes
from services.identity.isv.domain.sealing import Sealed, SealError, SecretBox

KEY = b"k" * 32


def test_sealed_secret_opens_with_its_app_key_only() -> None:
    """A sealed secret opens for the app it is bound to and not for another app."""
    box = SecretBox({"a": KEY})
    sealed = box.seal("s3cret", bound_to="APP1")
    assert b"s3cret" not in sealed.ciphertext
    assert box.open(sealed, bound_to="APP1") == "s3cret"
    with pytest.raises(SealError):
        box.open(sealed, bound_to="APP2")


def test_rotated_keyring_still_opens_old_secrets() -> None:
    """A keyring with a new first key still opens secrets sealed with the old key."""
    old = SecretBox({"old": KEY}).seal("x", bound_to="A")
    rotated = SecretBox({"new": b"n" * 32, "old": KEY})
    assert rotated.open(old, bound_to="A") == "x"
    assert rotated.seal("y", bound_to="A").key_id == "new"


def test_tampered_ciphertext_does_not_open() -> None:
    """Flipping one ciphertext bit is detected."""
    box = SecretBox({"a": KEY})
    sealed = box.seal("s3cret", bound_to="A")
    flipped = Sealed(sealed.key_id, sealed.nonce,
                     bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:])
    with pytest.raises(SealError):
        box.open(flipped, bound_to="A")
    assert "s3cret" not in repr(sealed) and "k" * 8 not in repr(box)


def test_scopes_are_checked_against_the_catalogue_and_the_app() -> None:
    """Unknown scopes are refused; a grant never exceeds the app's registered scopes."""
    with pytest.raises(InvalidArgument) as unknown:
        valid_scopes(["member.read", "root"])
    assert unknown.value.reason == "UNKNOWN_SCOPE"
    app = App("A" * 32, "x", AppStatus.TEST, ("member.read",), "https://isv.example/cb",
              1, 1, datetime.now(UTC))
    assert granted_scopes(app, []) == ("member.read",)
    with pytest.raises(InvalidArgument) as beyond:
        granted_scopes(app, ["points.write"])
    assert beyond.value.reason == "SCOPE_NOT_ALLOWED_FOR_APP"
