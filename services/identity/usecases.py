"""Identity use cases."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from libs.db import Connection
from libs.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unauthenticated,
    require,
)
from libs.paging import decode_page_token, encode_page_token, page_size
from services.identity.adapters.postgres import (
    AccountRepository,
    ImportRepository,
    LinkRepository,
    MerchantRepository,
    PhoneRepository,
)
from services.identity.domain.accounts import Account, valid_marketplace_account_id
from services.identity.domain.imports import (
    ERRORS_PER_RESPONSE,
    MAX_CHUNK_BYTES,
    ImportStatus,
    PhoneMatchImport,
    RowError,
    new_import_id,
    parse_chunk,
)
from services.identity.domain.links import (
    IdentityKind,
    IdentityRef,
    LinkedIdentity,
    LinkHistoryEntry,
)
from services.identity.domain.merchants import (
    MerchantUser,
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
    mask_phone,
    normalise_phone,
)
from services.identity.domain.tokens import Claims, Kind, TokenCodec

DEFAULT_SHOPPER_TTL = timedelta(days=7)
MAX_TTL = timedelta(days=30)


async def ensure_account(conn: Connection, marketplace_account_id: str) -> tuple[Account, bool]:
    return await AccountRepository(conn).ensure(
        valid_marketplace_account_id(marketplace_account_id))


async def get_account(conn: Connection, account_id: str) -> Account:
    account = await AccountRepository(conn).get(require(account_id, "account_id"))
    if account is None:
        raise NotFound(f"account {account_id} does not exist", reason="ACCOUNT_NOT_FOUND",
                       metadata={"account_id": account_id})
    return account


async def issue_shopper_token(conn: Connection, codec: TokenCodec, account_id: str,
                              ttl_seconds: int) -> tuple[str, Claims]:
    if ttl_seconds < 0 or timedelta(seconds=ttl_seconds) > MAX_TTL:
        raise InvalidArgument(f"ttl_seconds must be between 0 and {int(MAX_TTL.total_seconds())}",
                              field="ttl_seconds")
    account = await get_account(conn, account_id)
    ttl = timedelta(seconds=ttl_seconds) if ttl_seconds else DEFAULT_SHOPPER_TTL
    return codec.issue(Kind.SHOPPER, account.account_id, now=datetime.now(UTC), ttl=ttl)


def verify_token(codec: TokenCodec, token: str) -> Claims:
    return codec.verify(require(token, "token"), now=datetime.now(UTC))


DEFAULT_MERCHANT_TTL = timedelta(hours=12)
MAX_MERCHANT_TTL = timedelta(days=7)
RESEAL_BATCH = 500


def _now() -> datetime:
    return datetime.now(UTC)


# --- linked identities -------------------------------------------------------------------

async def link_identity(conn: Connection, account_id: str, ref: IdentityRef
                        ) -> tuple[LinkedIdentity, bool]:
    """Links an external identity; refuses one linked to another account, never moves it."""
    account = await get_account(conn, account_id)
    repo = LinkRepository(conn)
    await repo.lock_ref(ref)
    await repo.lock_account_slot(account.account_id, ref.kind, ref.scope)
    existing = await repo.find(ref)
    if existing is not None:
        if existing.account_id == account.account_id:
            return existing, False
        raise FailedPrecondition(
            f"this {ref.kind.name} is linked to another account; unlink it there first",
            reason="IDENTITY_LINKED_ELSEWHERE",
            metadata={"kind": ref.kind.name, "scope": ref.scope})
    slot = await repo.find_for_account(account.account_id, ref.kind, ref.scope)
    if slot is not None:
        raise FailedPrecondition(
            f"the account already has a {ref.kind.name} for scope {ref.scope!r}",
            reason="IDENTITY_KIND_ALREADY_LINKED",
            metadata={"kind": ref.kind.name, "scope": ref.scope})
    return await repo.add(ref, account.account_id, _now()), True


async def unlink_identity(conn: Connection, account_id: str, ref: IdentityRef,
                          reason: str) -> tuple[LinkedIdentity, datetime]:
    account = await get_account(conn, account_id)
    repo = LinkRepository(conn)
    await repo.lock_ref(ref)
    existing = await repo.find(ref)
    if existing is None or existing.account_id != account.account_id:
        raise NotFound(f"this {ref.kind.name} is not linked to account {account_id}",
                       reason="IDENTITY_NOT_LINKED",
                       metadata={"kind": ref.kind.name, "scope": ref.scope})
    now = _now()
    await repo.remove(ref, account.account_id, reason.strip()[:200] or "unspecified", now)
    return existing, now


async def list_linked_identities(conn: Connection, account_id: str) -> list[LinkedIdentity]:
    account = await get_account(conn, account_id)
    return await LinkRepository(conn).for_account(account.account_id)


async def link_history(conn: Connection, account_id: str, requested_size: int,
                       token: str) -> tuple[list[LinkHistoryEntry], str]:
    account = await get_account(conn, account_id)
    size = page_size(requested_size)
    position = decode_page_token(token, ("before",))
    before = int(position["before"]) if position else None
    entries = await LinkRepository(conn).history(account.account_id, before, size + 1)
    next_token = (encode_page_token({"before": entries[size - 1].entry_id})
                  if len(entries) > size else "")
    return entries[:size], next_token


async def resolve_identity(conn: Connection, ref: IdentityRef) -> Account:
    link = await LinkRepository(conn).find(ref)
    if link is None:
        raise NotFound(f"no account is linked to this {ref.kind.name}",
                       reason="IDENTITY_NOT_LINKED",
                       metadata={"kind": ref.kind.name, "scope": ref.scope})
    return await get_account(conn, link.account_id)


# --- phone vault ---------------------------------------------------------------------------

async def store_phone(conn: Connection, vault: PhoneVault, account_id: str,
                      phone: str) -> tuple[bool, str]:
    """Seal the normalised number; storing the number already on file changes nothing."""
    e164 = normalise_phone(phone)
    account = await get_account(conn, account_id)
    repo = PhoneRepository(conn)
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                       f"phone:{account.account_id}")
    fingerprint = vault.fingerprint(e164)
    current = await repo.get(account.account_id)
    if current is not None and current[1] == fingerprint:
        return False, mask_phone(e164)
    await repo.put(account.account_id, vault.seal(account.account_id, e164), fingerprint, _now())
    return True, mask_phone(e164)


async def _open_phone(conn: Connection, vault: PhoneVault, account_id: str) -> str:
    stored = await PhoneRepository(conn).get(account_id)
    if stored is None:
        raise FailedPrecondition("the account has no phone number on file",
                                 reason="PHONE_NOT_ON_FILE", metadata={"account_id": account_id})
    return vault.open(account_id, stored[0])


async def reveal_phone_for_delivery(conn: Connection, vault: PhoneVault, account_id: str,
                                    brand_id: str, purpose: str, message_id: str) -> str:
    """The plaintext number for a send, audited by brand, purpose and message."""
    account = await get_account(conn, account_id)
    brand_id = valid_brand_id(brand_id)
    phone = await _open_phone(conn, vault, account.account_id)
    await PhoneRepository(conn).audit_reveal(account.account_id, brand_id, purpose,
                                             message_id.strip()[:128], _now())
    return phone


async def reseal_phones(conn: Connection, vault: PhoneVault) -> int:
    """Re-encrypt one batch of numbers sealed with an older key (after a rotation)."""
    repo = PhoneRepository(conn)
    accounts = await repo.stale(vault.current_version, RESEAL_BATCH)
    for account_id in accounts:
        stored = await repo.get(account_id)
        assert stored is not None
        phone = vault.open(account_id, stored[0])
        await repo.put(account_id, vault.seal(account_id, phone), stored[1], _now())
    return len(accounts)


# --- encrypted phone matching ----------------------------------------------------------------

async def match_phone_for_brand(conn: Connection, vault: PhoneVault, matcher: PhoneMatcher,
                                brand_id: str, account_id: str) -> tuple[str, str]:
    """(encrypted phone, crm member id) when the brand knows the phone, else ("", "").

    A match links the brand's CRM member id to the account when that id is still free."""
    brand_id = valid_brand_id(brand_id)
    account = await get_account(conn, account_id)
    phone = await _open_phone(conn, vault, account.account_id)
    digest = matcher.encrypted_phone(brand_id, phone)
    crm_member_id = await PhoneRepository(conn).crm_member_for(brand_id, digest)
    if crm_member_id is None:
        return "", ""
    ref = IdentityRef(IdentityKind.BRAND_CRM_MEMBER_ID, brand_id, crm_member_id)
    links = LinkRepository(conn)
    await links.lock_ref(ref)
    await links.lock_account_slot(account.account_id, ref.kind, ref.scope)
    if (await links.find(ref) is None
            and await links.find_for_account(account.account_id, ref.kind, ref.scope) is None):
        await links.add(ref, account.account_id, _now())
    return digest.hex(), crm_member_id


async def start_import(conn: Connection, brand_id: str, expected_rows: int) -> PhoneMatchImport:
    if expected_rows < 0:
        raise InvalidArgument("expected_rows must not be negative", field="expected_rows")
    imp = PhoneMatchImport(new_import_id(), valid_brand_id(brand_id), ImportStatus.RECEIVING,
                           expected_rows, 0, 0, 0, 0, _now(), None)
    await ImportRepository(conn).add(imp)
    return imp


async def get_import(conn: Connection, brand_id: str, import_id: str, *,
                     for_update: bool = False) -> PhoneMatchImport:
    imp = await ImportRepository(conn).get(valid_brand_id(brand_id),
                                           require(import_id, "import_id"),
                                           for_update=for_update)
    if imp is None:
        raise NotFound(f"import {import_id} does not exist for brand {brand_id}",
                       reason="IMPORT_NOT_FOUND", metadata={"import_id": import_id})
    return imp


@dataclass(frozen=True)
class ChunkResult:
    imp: PhoneMatchImport
    accepted: int
    rejected: int
    errors: list[RowError]


async def append_rows(conn: Connection, brand_id: str, import_id: str, chunk_index: int,
                      data: bytes) -> ChunkResult:
    """Apply one chunk: good rows upserted, bad rows recorded by their file line."""
    if len(data) > MAX_CHUNK_BYTES:
        raise InvalidArgument(f"a chunk holds at most {MAX_CHUNK_BYTES} bytes", field="csv",
                              reason="CHUNK_TOO_LARGE")
    imp = await get_import(conn, brand_id, import_id, for_update=True)
    if imp.status is not ImportStatus.RECEIVING:
        raise FailedPrecondition("the import is already complete", reason="IMPORT_COMPLETED",
                                 metadata={"import_id": imp.import_id})
    if chunk_index != imp.chunks_received:
        raise FailedPrecondition(
            f"chunk_index must be {imp.chunks_received}, the next chunk of this import",
            reason="CHUNK_OUT_OF_ORDER",
            metadata={"expected_chunk_index": str(imp.chunks_received)})
    # Parsing a large chunk takes a while: in a thread, so that the event loop keeps serving
    # token verifications meanwhile.
    parsed = await asyncio.to_thread(parse_chunk, data, imp.lines_received + 1)
    repo = ImportRepository(conn)
    duplicates = await repo.apply_rows(imp.brand_id, imp.import_id, parsed.rows)
    errors = sorted([*parsed.errors, *duplicates], key=lambda e: e.line)
    await repo.add_errors(imp.import_id, errors)
    accepted = len(parsed.rows) - len(duplicates)
    updated = await repo.advance(imp.import_id, parsed.lines, accepted, len(errors))
    return ChunkResult(updated, accepted, len(errors), errors[:ERRORS_PER_RESPONSE])


async def complete_import(conn: Connection, brand_id: str, import_id: str) -> PhoneMatchImport:
    imp = await get_import(conn, brand_id, import_id, for_update=True)
    if imp.status is ImportStatus.COMPLETED:
        return imp
    return await ImportRepository(conn).complete(imp.import_id, _now())


async def import_errors(conn: Connection, brand_id: str, import_id: str, requested_size: int,
                        token: str) -> tuple[list[RowError], str]:
    imp = await get_import(conn, brand_id, import_id)
    size = page_size(requested_size)
    position = decode_page_token(token, ("line",))
    after = int(position["line"]) if position else 0
    errors = await ImportRepository(conn).errors(imp.import_id, after, size + 1)
    next_token = encode_page_token({"line": errors[size - 1].line}) if len(errors) > size else ""
    return errors[:size], next_token


# --- merchant users and tokens ---------------------------------------------------------------

async def create_merchant_user(conn: Connection, brand_id: str, login_name: str,
                               display_name: str, password: str) -> MerchantUser:
    user = MerchantUser(new_merchant_user_id(), valid_brand_id(brand_id),
                        valid_login_name(login_name), valid_display_name(display_name),
                        False, _now())
    if not await MerchantRepository(conn).add(user, hash_password(password)):
        raise AlreadyExists(f"login name {user.login_name!r} is taken",
                            reason="LOGIN_NAME_TAKEN", metadata={"login_name": user.login_name})
    return user


async def get_merchant_user(conn: Connection, brand_id: str,
                            merchant_user_id: str) -> MerchantUser:
    """A user of this brand only: another brand's user is simply not found."""
    user = await MerchantRepository(conn).get(require(merchant_user_id, "merchant_user_id"))
    if user is None or user.brand_id != valid_brand_id(brand_id):
        raise NotFound(f"merchant user {merchant_user_id} does not exist",
                       reason="MERCHANT_USER_NOT_FOUND",
                       metadata={"merchant_user_id": merchant_user_id})
    return user


async def list_merchant_users(conn: Connection, brand_id: str, requested_size: int,
                              token: str) -> tuple[list[MerchantUser], str]:
    size = page_size(requested_size)
    position = decode_page_token(token, ("after",))
    users = await MerchantRepository(conn).list(valid_brand_id(brand_id),
                                                str(position["after"]) if position else "",
                                                size + 1)
    next_token = (encode_page_token({"after": users[size - 1].merchant_user_id})
                  if len(users) > size else "")
    return users[:size], next_token


async def disable_merchant_user(conn: Connection, brand_id: str,
                                merchant_user_id: str) -> MerchantUser:
    user = await get_merchant_user(conn, brand_id, merchant_user_id)
    return await MerchantRepository(conn).disable(user.merchant_user_id, _now())


def _merchant_ttl(ttl_seconds: int) -> timedelta:
    if ttl_seconds < 0 or timedelta(seconds=ttl_seconds) > MAX_MERCHANT_TTL:
        raise InvalidArgument(
            f"ttl_seconds must be between 0 and {int(MAX_MERCHANT_TTL.total_seconds())}",
            field="ttl_seconds")
    return timedelta(seconds=ttl_seconds) if ttl_seconds else DEFAULT_MERCHANT_TTL


async def issue_merchant_token(conn: Connection, codec: TokenCodec, merchant_user_id: str,
                               ttl_seconds: int) -> tuple[str, Claims]:
    ttl = _merchant_ttl(ttl_seconds)
    user = await MerchantRepository(conn).get(require(merchant_user_id, "merchant_user_id"))
    if user is None:
        raise NotFound(f"merchant user {merchant_user_id} does not exist",
                       reason="MERCHANT_USER_NOT_FOUND",
                       metadata={"merchant_user_id": merchant_user_id})
    if user.disabled:
        raise FailedPrecondition("the merchant user is disabled",
                                 reason="MERCHANT_USER_DISABLED")
    return codec.issue(Kind.MERCHANT, user.merchant_user_id, now=_now(), ttl=ttl,
                       brand_id=user.brand_id)


async def sign_in_merchant(conn: Connection, codec: TokenCodec, login_name: str,
                           password: str) -> tuple[str, Claims, MerchantUser]:
    """One answer for unknown login, wrong password and disabled user: no account probing."""
    found = await MerchantRepository(conn).by_login(require(login_name, "login_name").lower())
    require(password, "password")
    if found is None or found[0].disabled or not password_matches(password, found[1]):
        raise Unauthenticated("login name or password is wrong",
                              reason="MERCHANT_CREDENTIALS_INVALID")
    user = found[0]
    token, claims = codec.issue(Kind.MERCHANT, user.merchant_user_id, now=_now(),
                                ttl=DEFAULT_MERCHANT_TTL, brand_id=user.brand_id)
    return token, claims, user


async def check_merchant_claims(conn: Connection, claims: Claims) -> None:
    """A verified merchant token also needs its user enabled and still of its brand."""
    user = await MerchantRepository(conn).get(claims.subject)
    if user is None or user.disabled or user.brand_id != claims.brand_id:
        raise Unauthenticated("the merchant user of this token is disabled or gone",
                              reason="MERCHANT_USER_DISABLED")
