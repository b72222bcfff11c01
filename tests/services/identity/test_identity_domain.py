"""Identity's domain rules on their own (no database, no server): account and identity ids,
merchant users and passwords, session tokens, the phone vault and matcher, import chunks."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from libs.errors import FailedPrecondition, InvalidArgument, Unauthenticated
from services.identity.domain.accounts import new_account_id, valid_marketplace_account_id
from services.identity.domain.imports import (
    ERRORS_PER_RESPONSE,
    MAX_CHUNK_BYTES,
    new_import_id,
    parse_chunk,
)
from services.identity.domain.links import IdentityKind, identity_ref
from services.identity.domain.merchants import (
    MAX_PASSWORD,
    MIN_PASSWORD,
    hash_password,
    new_merchant_user_id,
    password_matches,
    valid_brand_id,
    valid_display_name,
    valid_login_name,
)
from services.identity.domain.phones import (
    PhoneMatcher,
    PhoneVault,
    Sealed,
    mask_phone,
    normalise_phone,
    valid_vault_keys,
)
from services.identity.domain.tokens import Kind, TokenCodec

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PEPPER = b"p" * 32
HASH_A = "a" * 64
HASH_B = "b" * 64


def field_of(error: pytest.ExceptionInfo[InvalidArgument]) -> str:
    return error.value.metadata["field"]


# --- accounts and linked identities ------------------------------------------------------

@pytest.mark.parametrize("value", ["pin-1", "jd_user.42@x", "a" * 64])
def test_marketplace_account_id_accepts_its_alphabet(value: str) -> None:
    """Letters, digits and _-.@ up to 64 characters are a marketplace account id."""
    assert valid_marketplace_account_id(value) == value


@pytest.mark.parametrize("value", ["", "a" * 65, "has space", "emoji🙂", "semi;colon"])
def test_marketplace_account_id_refuses_anything_else(value: str) -> None:
    """Empty, too long or foreign characters are refused naming the field."""
    with pytest.raises(InvalidArgument) as error:
        valid_marketplace_account_id(value)
    assert field_of(error) == "marketplace_account_id"


def test_new_ids_are_prefixed_and_unique() -> None:
    """Generated ids carry their kind's prefix and never repeat."""
    for make, prefix in ((new_account_id, "acc_"), (new_merchant_user_id, "mus_"),
                         (new_import_id, "imp_")):
        ids = {make() for _ in range(100)}
        assert len(ids) == 100 and all(i.startswith(prefix) for i in ids)


def test_only_a_unionid_may_stand_without_a_scope() -> None:
    """OpenIDs and CRM ids need their app or brand as scope; a unionid does not."""
    assert not IdentityKind.WECHAT_UNIONID.needs_scope
    assert identity_ref(IdentityKind.WECHAT_UNIONID, "", "u1").scope == ""
    for kind in (IdentityKind.WECHAT_OA_OPENID, IdentityKind.WECHAT_MINI_OPENID,
                 IdentityKind.BRAND_CRM_MEMBER_ID):
        with pytest.raises(InvalidArgument) as error:
            identity_ref(kind, "  ", "o1")
        assert error.value.reason == "FIELD_REQUIRED" and field_of(error) == "scope"


@pytest.mark.parametrize("kind, scope, external_id, field", [
    (None, "wx1", "o1", "kind"),
    (IdentityKind.WECHAT_OA_OPENID, "a" * 65, "o1", "scope"),
    (IdentityKind.WECHAT_OA_OPENID, "wx 1", "o1", "scope"),
    (IdentityKind.WECHAT_OA_OPENID, "wx1", "", "external_id"),
    (IdentityKind.WECHAT_OA_OPENID, "wx1", "o" * 129, "external_id"),
    (IdentityKind.WECHAT_OA_OPENID, "wx1", "has space", "external_id"),
])
def test_identity_ref_names_the_bad_field(kind: IdentityKind | None, scope: str,
                                          external_id: str, field: str) -> None:
    """Each malformed part of an identity is refused naming that part."""
    with pytest.raises(InvalidArgument) as error:
        identity_ref(kind, scope, external_id)
    assert field_of(error) == field


def test_identity_ref_trims_the_scope_and_keeps_the_id() -> None:
    """Scope whitespace is trimmed; an openid's base64 punctuation is kept as is."""
    ref = identity_ref(IdentityKind.WECHAT_OA_OPENID, " wx1 ", "oAb+/=:9")
    assert (ref.scope, ref.external_id) == ("wx1", "oAb+/=:9")


# --- merchant users -------------------------------------------------------------------------

def test_login_name_is_lower_cased_and_checked() -> None:
    """A login name is case-insensitive (stored lower case), 3-64 of letters, digits, _-.@."""
    assert valid_login_name("Ops.Lead@Acme") == "ops.lead@acme"
    for bad in ("ab", "a" * 65, "white space", ""):
        with pytest.raises(InvalidArgument) as error:
            valid_login_name(bad)
        assert field_of(error) == "login_name"


def test_brand_id_and_display_name_limits() -> None:
    """A brand id is 1-64 of letters, digits, _ and -; a display name at most 100 characters."""
    assert valid_brand_id("brd_1-a") == "brd_1-a"
    for bad in ("", "b" * 65, "brd.1"):
        with pytest.raises(InvalidArgument):
            valid_brand_id(bad)
    assert valid_display_name("x" * 100) == "x" * 100
    with pytest.raises(InvalidArgument) as error:
        valid_display_name("x" * 101)
    assert error.value.reason == "NAME_TOO_LONG"


def test_password_hash_round_trip_and_salting() -> None:
    """The same password hashes differently each time; each hash matches only it."""
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and first.startswith("scrypt$")
    assert password_matches("correct horse", first) and password_matches("correct horse", second)
    assert not password_matches("correct horsE", first)
    assert not password_matches("correct horse\x00", first)


def test_password_length_is_bounded_on_both_sides() -> None:
    """No password hashes to ""; shorter than the minimum or longer than the maximum is
    refused with its own reason."""
    assert hash_password("") == ""
    assert hash_password("p" * MIN_PASSWORD) and hash_password("p" * MAX_PASSWORD)
    for password, reason in (("p" * (MIN_PASSWORD - 1), "PASSWORD_TOO_SHORT"),
                             ("p" * (MAX_PASSWORD + 1), "PASSWORD_TOO_LONG")):
        with pytest.raises(InvalidArgument) as error:
            hash_password(password)
        assert error.value.reason == reason


@pytest.mark.parametrize("stored", ["", "scrypt$only-two", "md5$c2FsdA==$ZGlnZXN0",
                                    "scrypt$!!$!!"])
def test_password_never_matches_a_broken_or_foreign_hash(stored: str) -> None:
    """An empty, truncated, other-scheme or undecodable stored hash matches nothing."""
    assert not password_matches("correct horse", stored)


# --- session tokens -------------------------------------------------------------------------

def test_token_carries_its_claims() -> None:
    """A merchant token round-trips kind, subject, brand and whole-second times."""
    codec = TokenCodec({"k1": b"k" * 32})
    token, issued = codec.issue(Kind.MERCHANT, "mus_1", now=NOW, ttl=timedelta(hours=2),
                                brand_id="brd_1")
    claims = codec.verify(token, now=NOW)
    assert claims == issued
    assert (claims.kind, claims.subject, claims.brand_id) == (Kind.MERCHANT, "mus_1", "brd_1")


def test_token_keys_rotate_by_putting_the_new_key_first() -> None:
    """A token signed with the old key still verifies after rotation; one signed with a key
    no longer trusted is refused as such."""
    old = TokenCodec({"k1": b"1" * 32})
    token, _ = old.issue(Kind.SHOPPER, "acc_1", now=NOW, ttl=timedelta(hours=1))
    rotated = TokenCodec({"k2": b"2" * 32, "k1": b"1" * 32})
    assert rotated.verify(token, now=NOW).subject == "acc_1"
    assert rotated.issue(Kind.SHOPPER, "acc_1", now=NOW,
                         ttl=timedelta(hours=1))[0].split(".")[1] == "k2"
    with pytest.raises(Unauthenticated) as error:
        TokenCodec({"k2": b"2" * 32}).verify(token, now=NOW)
    assert error.value.reason == "TOKEN_KEY_UNKNOWN"


@pytest.mark.parametrize("token, reason", [
    ("", "TOKEN_MALFORMED"), ("v1.k1.x", "TOKEN_MALFORMED"), ("v2.k1.e30.sig", "TOKEN_MALFORMED"),
])
def test_malformed_tokens_are_refused(token: str, reason: str) -> None:
    """Wrong shape or version is TOKEN_MALFORMED, never an internal error."""
    with pytest.raises(Unauthenticated) as error:
        TokenCodec({"k1": b"k" * 32}).verify(token, now=NOW)
    assert error.value.reason == reason


def test_validly_signed_unreadable_claims_are_malformed() -> None:
    """Claims that do not parse are refused even under a correct signature."""
    key = b"k" * 32
    body = "v1.k1.bm90LWpzb24"
    signature = hmac.new(key, body.encode(), hashlib.sha256).digest()
    token = f"{body}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    with pytest.raises(Unauthenticated) as error:
        TokenCodec({"k1": key}).verify(token, now=NOW)
    assert error.value.reason == "TOKEN_MALFORMED"


def test_an_empty_keyring_is_refused() -> None:
    """A codec without keys cannot be made."""
    with pytest.raises(ValueError):
        TokenCodec({})


# --- phones ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["13812345678", "138 1234 5678", "138-1234-5678",
                                 "+86 138 1234 5678", "008613812345678", "8613812345678",
                                 "(+86) 138.1234.5678"])
def test_mainland_mobiles_normalise_to_e164(raw: str) -> None:
    """Common notations of one mainland mobile all give the same E.164 number."""
    assert normalise_phone(raw) == "+8613812345678"


def test_foreign_numbers_keep_their_country_code() -> None:
    """A number given with another country code is kept in E.164."""
    assert normalise_phone("+44 20 7946 0958") == "+442079460958"


@pytest.mark.parametrize("raw", ["12345", "+86 123 4567 8901", "+0123456789", "phone",
                                 "+1234567890123456", "23812345678"])
def test_unrecognisable_numbers_are_refused(raw: str) -> None:
    """Numbers that are no mobile or no E.164 are PHONE_INVALID on the given field."""
    with pytest.raises(InvalidArgument) as error:
        normalise_phone(raw, field="profile.phone")
    assert error.value.reason == "PHONE_INVALID" and field_of(error) == "profile.phone"


def test_masking_shows_only_the_ends() -> None:
    """A mainland mobile shows its first three and last four digits; others their ends."""
    assert mask_phone("+8613812345678") == "+86 138****5678"
    assert mask_phone("+442079460958") == "+44****0958"


def test_vault_seals_per_account_and_opens_only_there() -> None:
    """A sealed number opens for its account, fails authentication under another account,
    and sealing twice gives different ciphertexts."""
    vault = PhoneVault({"k1": b"v" * 32}, PEPPER)
    sealed = vault.seal("acc_1", "+8613812345678")
    assert vault.open("acc_1", sealed) == "+8613812345678"
    assert vault.seal("acc_1", "+8613812345678").ciphertext != sealed.ciphertext
    with pytest.raises(FailedPrecondition) as error:
        vault.open("acc_2", sealed)
    assert error.value.reason == "PHONE_CIPHERTEXT_INVALID"


def test_vault_rotation_opens_old_seals_and_refuses_dropped_keys() -> None:
    """The first key seals, every key opens; a key removed from the ring is named."""
    old = PhoneVault({"k1": b"1" * 32}, PEPPER)
    sealed = old.seal("acc_1", "+8613812345678")
    rotated = PhoneVault({"k2": b"2" * 32, "k1": b"1" * 32}, PEPPER)
    assert rotated.current_version == "k2"
    assert rotated.open("acc_1", sealed) == "+8613812345678"
    with pytest.raises(FailedPrecondition) as error:
        PhoneVault({"k2": b"2" * 32}, PEPPER).open("acc_1", sealed)
    assert error.value.reason == "PHONE_KEY_UNAVAILABLE"
    tampered = Sealed("k1", sealed.nonce, bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:])
    with pytest.raises(FailedPrecondition):
        old.open("acc_1", tampered)


def test_vault_fingerprint_is_keyed_and_stable() -> None:
    """The same number has the same fingerprint in one deployment and another elsewhere."""
    vault = PhoneVault({"k1": b"v" * 32}, PEPPER)
    assert vault.fingerprint("+8613812345678") == vault.fingerprint("+8613812345678")
    assert vault.fingerprint("+8613812345678") != vault.fingerprint("+8613812345679")
    other = PhoneVault({"k1": b"v" * 32}, b"q" * 32)
    assert other.fingerprint("+8613812345678") != vault.fingerprint("+8613812345678")


def test_vault_keys_must_be_aes_sizes() -> None:
    """No keys, or a key that is not 16, 24 or 32 bytes, is a configuration error."""
    assert valid_vault_keys({"a": b"x" * 16, "b": b"x" * 24, "c": b"x" * 32})
    for keys in ({}, {"k": b"x" * 31}):
        with pytest.raises(ValueError):
            valid_vault_keys(keys)


def test_matcher_follows_the_published_rule() -> None:
    """encrypted_phone is HMAC-SHA256(brand key, E.164), per brand; a short pepper is refused."""
    matcher = PhoneMatcher(PEPPER)
    key = matcher.brand_key("brd_1")
    assert len(key) == 32 and key != matcher.brand_key("brd_2")
    assert matcher.encrypted_phone("brd_1", "+8613812345678") == hmac.new(
        key, b"+8613812345678", hashlib.sha256).digest()
    with pytest.raises(ValueError):
        PhoneMatcher(b"short")


# --- phone-match import chunks ------------------------------------------------------------

def test_chunk_rows_header_and_blank_lines() -> None:
    """The header counts only as the file's first line; blank lines count but are no rows."""
    data = f"phone_hash,crm_member_id\n{HASH_A},crm-1\n\n{HASH_B} , crm-2\n".encode()
    parsed = parse_chunk(data, 1)
    assert parsed.lines == 4 and parsed.errors == []
    assert parsed.rows == [(2, bytes.fromhex(HASH_A), "crm-1"), (4, bytes.fromhex(HASH_B), "crm-2")]
    later = parse_chunk(b"phone_hash,crm_member_id\n", 10)
    assert [(e.line, e.reason) for e in later.errors] == [(10, "PHONE_HASH_INVALID")]


@pytest.mark.parametrize("line, reason", [
    ("only-one-column", "COLUMN_COUNT"),
    (f"{HASH_A},crm,extra", "COLUMN_COUNT"),
    ("abc,crm-1", "PHONE_HASH_INVALID"),
    (f"{'z' * 64},crm-1", "PHONE_HASH_INVALID"),
    (f"{HASH_A},crm id", "CRM_MEMBER_ID_INVALID"),
    (f"{HASH_A},{'c' * 65}", "CRM_MEMBER_ID_INVALID"),
])
def test_each_bad_row_is_reported_by_its_file_line(line: str, reason: str) -> None:
    """A bad row names its reason and its line in the whole file, and is not a row."""
    parsed = parse_chunk(f"{HASH_A},ok\n{line}\n".encode(), 41)
    assert [(e.line, e.reason) for e in parsed.errors] == [(42, reason)]
    assert [row[0] for row in parsed.rows] == [41]


def test_repeated_hash_is_reported_on_its_later_line() -> None:
    """The first occurrence stays a row; the repeat names the earlier line."""
    parsed = parse_chunk(f"{HASH_A},crm-1\n{HASH_A},crm-2\n".encode(), 1)
    assert [row[2] for row in parsed.rows] == ["crm-1"]
    assert parsed.errors[0].reason == "DUPLICATE_PHONE" and "line 1" in parsed.errors[0].message


def test_non_utf8_line_is_an_encoding_error_on_that_line() -> None:
    """Undecodable bytes fail only their own line; the other lines are still parsed."""
    parsed = parse_chunk(f"{HASH_A},crm-1\n".encode() + b"\xff\xfe,crm-2\n"
                         + f"{HASH_B},crm-3\n".encode(), 5)
    assert [(e.line, e.reason) for e in parsed.errors] == [(6, "ENCODING_INVALID")]
    assert [row[0] for row in parsed.rows] == [5, 7]


def test_import_limits_fit_a_grpc_message() -> None:
    """A chunk stays under gRPC's default 4 MiB message; an answer lists a bounded number of
    errors."""
    assert MAX_CHUNK_BYTES < 4 * 1024 * 1024 and 0 < ERRORS_PER_RESPONSE <= 1000
