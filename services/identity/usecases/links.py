"""Linked external identities (WeChat openids and unionids, brands' CRM member ids): link,
unlink, list, history, and resolving an identity to its account."""

from __future__ import annotations

from datetime import datetime

from libs.clock import Clock
from libs.db import Connection
from libs.errors import FailedPrecondition, NotFound
from libs.idempotency import CommitOnce
from libs.paging import Position, decode_page_token, keyset_page, page_size
from services.identity.adapters.postgres import LinkRepository
from services.identity.domain.accounts import Account
from services.identity.domain.links import (
    IdentityKind,
    IdentityRef,
    LinkedIdentity,
    LinkHistoryEntry,
)
from services.identity.usecases.accounts import account_of
from services.identity.usecases.context import IdentityContext, Reply

MAX_UNLINK_REASON = 200


def _not_linked(what: str, ref: IdentityRef) -> NotFound:
    return NotFound(what, reason="IDENTITY_NOT_LINKED",
                    metadata={"kind": ref.kind.name, "scope": ref.scope})


async def link_identity(ctx: IdentityContext,
                        commit_once: CommitOnce[tuple[LinkedIdentity, bool], Reply],
                        account_id: str, ref: IdentityRef) -> Reply:
    """Links an external identity; refuses one linked to another account, never moves it.
    The result says whether it was linked now (False: it already was, to this account)."""
    return await commit_once(lambda conn: _link(conn, account_id, ref, ctx.clock))


async def _link(conn: Connection, account_id: str, ref: IdentityRef,
                clock: Clock) -> tuple[LinkedIdentity, bool]:
    account = await account_of(conn, account_id)
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
    return await repo.add(ref, account.account_id, clock()), True


async def unlink_identity(ctx: IdentityContext,
                          commit_once: CommitOnce[tuple[LinkedIdentity, datetime], Reply],
                          account_id: str, ref: IdentityRef, reason: str) -> Reply:
    """Unlinks and records it in the history; the result is the link and when it ended."""
    return await commit_once(lambda conn: _unlink(conn, account_id, ref, reason, ctx.clock))


async def _unlink(conn: Connection, account_id: str, ref: IdentityRef, reason: str,
                  clock: Clock) -> tuple[LinkedIdentity, datetime]:
    account = await account_of(conn, account_id)
    repo = LinkRepository(conn)
    await repo.lock_ref(ref)
    existing = await repo.find(ref)
    if existing is None or existing.account_id != account.account_id:
        raise _not_linked(f"this {ref.kind.name} is not linked to account {account_id}", ref)
    now = clock()
    await repo.remove(ref, account.account_id,
                      reason.strip()[:MAX_UNLINK_REASON] or "unspecified", now)
    return existing, now


async def list_linked_identities(ctx: IdentityContext, account_id: str, requested_size: int,
                                 token: str, *, kind: IdentityKind | None = None,
                                 scope: str = "") -> tuple[list[LinkedIdentity], str]:
    """One page of the account's linked identities, oldest link first, of one kind and scope
    when given. A page token is good only for the account and filters it was issued for."""
    async with ctx.db.connection() as conn:
        return await _linked_page(conn, account_id, requested_size, token, kind, scope)


async def _linked_page(conn: Connection, account_id: str, requested_size: int, token: str,
                       kind: IdentityKind | None, scope: str
                       ) -> tuple[list[LinkedIdentity], str]:
    account = await account_of(conn, account_id)
    size = page_size(requested_size)
    filters = {"account_id": account.account_id, "kind": kind.value if kind else "",
               "scope": scope}
    position = decode_page_token(token, ("t", "k", "s"), filters=filters)
    after = ((datetime.fromisoformat(str(position["t"])), str(position["k"]), str(position["s"]))
             if position else None)
    links = await LinkRepository(conn).for_account(account.account_id, kind=kind,
                                                   scope=scope or None, after=after,
                                                   limit=size + 1)
    return keyset_page(links, size, _link_position, filters=filters)


def _link_position(link: LinkedIdentity) -> Position:
    return {"t": link.linked_at.isoformat(), "k": link.ref.kind.value, "s": link.ref.scope}


async def link_history(ctx: IdentityContext, account_id: str, requested_size: int,
                       token: str) -> tuple[list[LinkHistoryEntry], str]:
    """One page of the account's link and unlink history, newest first."""
    async with ctx.db.connection() as conn:
        return await _history_page(conn, account_id, requested_size, token)


async def _history_page(conn: Connection, account_id: str, requested_size: int,
                        token: str) -> tuple[list[LinkHistoryEntry], str]:
    account = await account_of(conn, account_id)
    size = page_size(requested_size)
    filters = {"account_id": account.account_id}
    position = decode_page_token(token, ("before",), filters=filters)
    before = int(position["before"]) if position else None
    entries = await LinkRepository(conn).history(account.account_id, before, size + 1)
    return keyset_page(entries, size, lambda entry: {"before": entry.entry_id}, filters=filters)


async def resolve_identity(ctx: IdentityContext, ref: IdentityRef) -> Account:
    """The account an external identity is linked to."""
    async with ctx.db.connection() as conn:
        link = await LinkRepository(conn).find(ref)
        if link is None:
            raise _not_linked(f"no account is linked to this {ref.kind.name}", ref)
        return await account_of(conn, link.account_id)
