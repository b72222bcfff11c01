"""The open platform's domain rules on their own (no database, no server): app keys, names,
redirect URIs, quotas, scopes, token lifetimes by app status, opaque credentials, codes and
tokens on their expiry, authorisations per app, and the secret box's keyring (sealing itself:
test_isv_sealing.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from libs.errors import InvalidArgument, PermissionDenied
from services.identity.isv.domain.apps import (
    KNOWN_SCOPES,
    App,
    AppStatus,
    Authorization,
    AuthorizationCode,
    IssuedToken,
    granted_scopes,
    new_app_key,
    new_app_secret,
    new_opaque_token,
    token_hash,
    valid_app_key,
    valid_name,
    valid_quota,
    valid_redirect_uri,
    valid_scopes,
)
from services.identity.isv.domain.sealing import SealError, SecretBox

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def app(status: AppStatus = AppStatus.TEST,
        scopes: tuple[str, ...] = ("member.read", "points.read")) -> App:
    return App(new_app_key(), "Loyalty Pro", status, scopes, "https://isv.example/cb", 600,
               200_000, NOW)


def test_issued_app_keys_are_valid_and_others_are_not() -> None:
    """An issued key is 32 upper-case hex characters; lower case or any other shape is
    APP_KEY_MALFORMED."""
    key = new_app_key()
    assert valid_app_key(key) == key
    for bad in (key.lower(), key[:-1], key + "A", "G" * 32):
        with pytest.raises(InvalidArgument) as error:
            valid_app_key(bad)
        assert error.value.reason == "APP_KEY_MALFORMED"
    with pytest.raises(InvalidArgument) as missing:
        valid_app_key("")
    assert missing.value.metadata["field"] == "app_key"


def test_credentials_are_random_and_hashed_for_storage() -> None:
    """Secrets and opaque tokens never repeat; a token is stored as its SHA-256 only."""
    assert len({new_app_secret() for _ in range(50)}) == 50
    tokens = {new_opaque_token() for _ in range(50)}
    assert len(tokens) == 50 and all(len(t) >= 43 for t in tokens)
    token = next(iter(tokens))
    assert len(token_hash(token)) == 32 and token_hash(token) == token_hash(token)
    assert token.encode() not in token_hash(token)


def test_name_is_required_and_bounded() -> None:
    """A name is 1-100 characters."""
    assert valid_name("x" * 100) == "x" * 100
    with pytest.raises(InvalidArgument) as error:
        valid_name("x" * 101)
    assert error.value.reason == "NAME_TOO_LONG"


@pytest.mark.parametrize("uri", ["https://isv.example/cb", "http://localhost:8080/cb?x=1"])
def test_absolute_http_redirect_uris_are_accepted(uri: str) -> None:
    """http(s) with a host, with or without a query, is a redirect URI."""
    assert valid_redirect_uri(uri) == uri


@pytest.mark.parametrize("uri", ["ftp://isv.example/cb", "/relative", "https://isv.example/cb#f",
                                 "https:///no-host", "https://isv.example/" + "x" * 2000])
def test_other_redirect_uris_are_refused(uri: str) -> None:
    """Another scheme, no host, a fragment or more than 2000 characters is refused."""
    with pytest.raises(InvalidArgument) as error:
        valid_redirect_uri(uri)
    assert error.value.reason == "REDIRECT_URI_INVALID"


def test_quota_zero_means_the_default_and_the_maximum_is_inclusive() -> None:
    """0 gives the default; the maximum itself passes; one more, or a negative, does not."""
    assert valid_quota(0, 600, 1000, "calls_per_minute") == 600
    assert valid_quota(1000, 600, 1000, "calls_per_minute") == 1000
    for bad in (-1, 1001):
        with pytest.raises(InvalidArgument) as error:
            valid_quota(bad, 600, 1000, "calls_per_minute")
        assert error.value.metadata["field"] == "calls_per_minute"


def test_scopes_are_deduplicated_sorted_and_known() -> None:
    """Blank and repeated scopes are dropped; an unknown one is named."""
    assert valid_scopes([" points.read", "member.read", "points.read", ""]) == (
        "member.read", "points.read")
    assert set(valid_scopes(KNOWN_SCOPES)) == set(KNOWN_SCOPES)
    with pytest.raises(InvalidArgument) as error:
        valid_scopes(["member.read", "member.delete"])
    assert error.value.reason == "UNKNOWN_SCOPE" and "member.delete" in error.value.message


def test_a_shop_grants_at_most_what_the_app_registered() -> None:
    """No scopes asked grants all the app's; a scope beyond them is refused."""
    registered = app()
    assert granted_scopes(registered, []) == registered.scopes
    assert granted_scopes(registered, ["points.read"]) == ("points.read",)
    with pytest.raises(InvalidArgument) as error:
        granted_scopes(registered, ["points.write"])
    assert error.value.reason == "SCOPE_NOT_ALLOWED_FOR_APP"


def test_token_lifetimes_follow_the_app_status() -> None:
    """Test apps get 24-hour access tokens, production apps long-lived ones; refresh tokens
    outlive access tokens."""
    test, production = app(AppStatus.TEST), app(AppStatus.PRODUCTION)
    assert test.access_ttl() == timedelta(hours=24)
    assert production.access_ttl() > timedelta(days=300)
    for each in (test, production, app(AppStatus.SUSPENDED)):
        assert each.refresh_ttl() > each.access_ttl()


def test_only_a_suspended_app_is_refused() -> None:
    """require_active passes test and production apps and refuses a suspended one."""
    app(AppStatus.TEST).require_active()
    app(AppStatus.PRODUCTION).require_active()
    with pytest.raises(PermissionDenied) as error:
        app(AppStatus.SUSPENDED).require_active()
    assert error.value.reason == "APP_SUSPENDED"


def test_secret_box_keyring_is_checked_and_never_printed() -> None:
    """No keys or a key of a non-AES size is refused; repr shows key ids, never key bytes."""
    for keys in ({}, {"k1": b"x" * 20}):
        with pytest.raises(ValueError):
            SecretBox(keys)
    box = SecretBox({"k1": b"s" * 32})
    sealed = box.seal("app-secret", bound_to="AK1")
    assert "sss" not in repr(box) and repr(sealed) == "Sealed(key_id='k1')"
    with pytest.raises(SealError):
        SecretBox({"k2": b"t" * 32}).open(sealed, bound_to="AK1")


def test_codes_and_tokens_are_good_until_their_expiry_exclusive() -> None:
    """A code is usable once and before its expiry; a token is valid unrevoked and before its
    expiry; at the expiry instant both are refused."""
    expires = NOW + timedelta(minutes=10)
    code = AuthorizationCode(b"h", "auz_1", expires, None)
    assert code.usable(expires - timedelta(microseconds=1)) and not code.usable(expires)
    assert not AuthorizationCode(b"h", "auz_1", expires, NOW).usable(NOW)
    token = IssuedToken("auz_1", "pair_1", expires, None)
    assert token.valid(expires - timedelta(microseconds=1)) and not token.valid(expires)
    assert not IssuedToken("auz_1", "pair_1", expires, NOW).valid(NOW)


def test_an_authorization_is_live_only_for_its_own_app_until_revoked() -> None:
    """Credentials of an authorisation count for its app only, and not once it is revoked."""
    granted = Authorization("auz_1", "AK1", "Loyalty Pro", "brd_1", "shp_1", ("member.read",),
                            "mus_1", NOW, None)
    assert granted.live_for("AK1") and not granted.live_for("AK2")
    revoked = Authorization("auz_1", "AK1", "Loyalty Pro", "brd_1", "shp_1", ("member.read",),
                            "mus_1", NOW, NOW + timedelta(days=1))
    assert not revoked.live_for("AK1")
