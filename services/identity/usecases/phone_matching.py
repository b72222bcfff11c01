"""Encrypted phone matching with a brand's CRM: the brand's match key, imports of the brand's
encrypted phone list (chunked CSV), and matching a shopper's phone against it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from libs.clock import Clock
from libs.db import Connection
from libs.errors import FailedPrecondition, InvalidArgument, found, require
from libs.idempotency import CommitOnce
from libs.paging import decode_page_token, keyset_page, page_size
from services.identity.adapters.postgres import ImportRepository, LinkRepository, PhoneRepository
from services.identity.domain.imports import (
    ERRORS_PER_RESPONSE,
    MAX_CHUNK_BYTES,
    ImportStatus,
    PhoneMatchImport,
    RowError,
    new_import_id,
    parse_chunk,
)
from services.identity.domain.links import IdentityKind, IdentityRef
from services.identity.domain.merchants import valid_brand_id
from services.identity.domain.phones import PhoneMatcher, PhoneVault
from services.identity.usecases.accounts import account_of
from services.identity.usecases.context import IdentityContext, Reply
from services.identity.usecases.phones import open_phone


@dataclass(frozen=True)
class MatchKey:
    brand_id: str
    key: bytes


@dataclass(frozen=True)
class ChunkResult:
    imp: PhoneMatchImport
    accepted: int
    rejected: int
    errors: list[RowError]


def phone_match_key(ctx: IdentityContext, brand_id: str) -> MatchKey:
    """The key a brand encrypts its CRM phone list with before importing it."""
    brand_id = valid_brand_id(brand_id)
    return MatchKey(brand_id, ctx.matcher.brand_key(brand_id))


async def match_phone_for_brand(ctx: IdentityContext,
                                commit_once: CommitOnce[tuple[str, str], Reply],
                                brand_id: str, account_id: str) -> Reply:
    """(encrypted phone, crm member id) when the brand knows the phone, else ("", "").

    A match links the brand's CRM member id to the account when that id is still free."""
    return await commit_once(lambda conn: _match(conn, ctx.vault, ctx.matcher, brand_id,
                                                 account_id, ctx.clock))


async def _match(conn: Connection, vault: PhoneVault, matcher: PhoneMatcher, brand_id: str,
                 account_id: str, clock: Clock) -> tuple[str, str]:
    brand_id = valid_brand_id(brand_id)
    account = await account_of(conn, account_id)
    phone = await open_phone(conn, vault, account.account_id)
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
        await links.add(ref, account.account_id, clock())
    return digest.hex(), crm_member_id


async def start_import(ctx: IdentityContext, commit_once: CommitOnce[PhoneMatchImport, Reply],
                       brand_id: str, expected_rows: int) -> Reply:
    async def start(conn: Connection) -> PhoneMatchImport:
        if expected_rows < 0:
            raise InvalidArgument("expected_rows must not be negative", field="expected_rows")
        imp = PhoneMatchImport(new_import_id(), valid_brand_id(brand_id),
                               ImportStatus.RECEIVING, expected_rows, 0, 0, 0, 0, ctx.clock(),
                               None)
        await ImportRepository(conn).add(imp)
        return imp

    return await commit_once(start)


async def get_import(ctx: IdentityContext, brand_id: str, import_id: str) -> PhoneMatchImport:
    async with ctx.db.connection() as conn:
        return await _import(conn, brand_id, import_id)


async def _import(conn: Connection, brand_id: str, import_id: str, *,
                  for_update: bool = False) -> PhoneMatchImport:
    imp = await ImportRepository(conn).get(valid_brand_id(brand_id),
                                           require(import_id, "import_id"),
                                           for_update=for_update)
    return found(imp, f"import {import_id} for brand {brand_id}", reason="IMPORT_NOT_FOUND",
                 import_id=import_id)


async def append_rows(commit_once: CommitOnce[ChunkResult, Reply], brand_id: str,
                      import_id: str, chunk_index: int, data: bytes) -> Reply:
    """Apply one chunk: good rows upserted, bad rows recorded by their file line."""
    return await commit_once(lambda conn: _append(conn, brand_id, import_id, chunk_index, data))


async def _append(conn: Connection, brand_id: str, import_id: str, chunk_index: int,
                  data: bytes) -> ChunkResult:
    if len(data) > MAX_CHUNK_BYTES:
        raise InvalidArgument(f"a chunk holds at most {MAX_CHUNK_BYTES} bytes", field="csv",
                              reason="CHUNK_TOO_LARGE")
    imp = await _import(conn, brand_id, import_id, for_update=True)
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


async def complete_import(ctx: IdentityContext,
                          commit_once: CommitOnce[PhoneMatchImport, Reply], brand_id: str,
                          import_id: str) -> Reply:
    async def complete(conn: Connection) -> PhoneMatchImport:
        imp = await _import(conn, brand_id, import_id, for_update=True)
        if imp.status is ImportStatus.COMPLETED:
            return imp
        return await ImportRepository(conn).complete(imp.import_id, ctx.clock())

    return await commit_once(complete)


async def import_errors(ctx: IdentityContext, brand_id: str, import_id: str,
                        requested_size: int, token: str) -> tuple[list[RowError], str]:
    """One page of the import's row errors, by file line."""
    async with ctx.db.connection() as conn:
        return await _errors_page(conn, brand_id, import_id, requested_size, token)


async def _errors_page(conn: Connection, brand_id: str, import_id: str, requested_size: int,
                       token: str) -> tuple[list[RowError], str]:
    imp = await _import(conn, brand_id, import_id)
    size = page_size(requested_size)
    filters = {"brand_id": imp.brand_id, "import_id": imp.import_id}
    position = decode_page_token(token, ("line",), filters=filters)
    after = int(position["line"]) if position else 0
    errors = await ImportRepository(conn).errors(imp.import_id, after, size + 1)
    return keyset_page(errors, size, lambda error: {"line": error.line}, filters=filters)
