"""The points ledger: immutable entries, lots with expiry, pending points, reversals.

Every change locks the account row first (one writer per account at a time), writes one
immutable entry, moves the balances by exactly the entry's deltas, and publishes
PointsBalanceChanged in the same transaction. Invariants, checked by `check_ledger`:
available = sum(available_delta), pending = sum(pending_delta) = sum of pending grants,
shortfall = sum(entry shortfall), and the lots hold max(available, 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from brandclub.events.v1 import benefits_events_pb2
from libs.clock import Clock, system_clock
from libs.db import Connection
from libs.errors import FailedPrecondition, InvalidArgument, found, require
from libs.idempotency import CommitOnce, Reply
from libs.metrics import points_issued, points_redeemed
from libs.outbox import add_event
from libs.paging import (
    PAGE_TOKEN_INVALID,
    decode_page_token,
    encode_page_token,
    keyset_page,
    page_size,
)
from services.benefits.adapters.config_repository import ConfigRepository
from services.benefits.adapters.points_repository import PointsRepository
from services.benefits.domain.eligibility import Action
from services.benefits.domain.points import (
    Entry,
    EntryKind,
    Lot,
    PointsBalance,
    PointsPolicy,
    Source,
    allocate,
    new_id,
    positive_amount,
    valid_reason,
)
from services.benefits.usecases.context import BenefitsContext
from services.benefits.usecases.eligibility import require_member

TOPIC = "benefits"
PRODUCER = "benefits"


@dataclass(frozen=True)
class Change:
    entry: Entry
    balance: PointsBalance


async def policy_of(conn: Connection, brand_id: str) -> PointsPolicy:
    """The brand's policy, or the default (never expires, shortfall recorded)."""
    return await ConfigRepository(conn).policy(brand_id) or PointsPolicy(brand_id)


async def get_balance(conn: Connection, brand_id: str, account_id: str) -> PointsBalance:
    return await PointsRepository(conn).balance(require(brand_id, "brand_id"),
                                                require(account_id, "account_id"))


class Ledger:
    """Ledger operations inside one transaction on one connection."""

    def __init__(self, conn: Connection, clock: Clock = system_clock) -> None:
        self.conn = conn
        self.repo = PointsRepository(conn)
        self._clock = clock

    async def _write(self, balance: PointsBalance, *, kind: EntryKind, amount: int,
                     available_delta: int, pending_delta: int, reason_code: str,
                     source: Source, request_id: str, now: datetime, shortfall: int = 0,
                     reverses: str | None = None, available_at: datetime | None = None,
                     entry_id: str | None = None) -> Change:
        entry = Entry(balance.brand_id, entry_id or new_id("pte"), balance.account_id, kind,
                      amount, available_delta, pending_delta, shortfall, reason_code, source,
                      request_id, reverses, available_at, now)
        after = await self.repo.apply(entry)
        await add_event(self.conn, topic=TOPIC, brand_id=balance.brand_id, producer=PRODUCER,
                        payload=benefits_events_pb2.PointsBalanceChanged(
                            brand_id=balance.brand_id, account_id=balance.account_id,
                            available_points=after.available, pending_points=after.pending,
                            entry_id=entry.entry_id, balance_version=after.version,
                            reason_code=reason_code))
        return Change(entry, after)

    async def _credit_lot(self, policy: PointsPolicy, before: PointsBalance, entry_id: str,
                          amount: int, now: datetime) -> None:
        """A new lot for points that became available; a negative balance is filled first."""
        filled = max(0, before.available + amount) - max(0, before.available)
        expires_at = policy.expiry_for(now)
        await self.repo.add_lot(before.brand_id, new_id("lot"), before.account_id, entry_id,
                                amount, filled, expires_at, now)

    async def _take(self, balance: PointsBalance, entry_id: str, amount: int,
                    prefer_lot: str | None = None) -> int:
        """Take up to `amount` from open lots (a preferred lot first, then soonest-expiring);
        returns what was taken."""
        lots = await self.repo.open_lots(balance.brand_id, balance.account_id)
        ordered: list[Lot] = [lot for lot in lots if lot.lot_id == prefer_lot]
        taken = allocate(ordered, amount) if ordered else []
        left = amount - sum(t for _, t in taken)
        rest = [lot for lot in lots if lot.lot_id != prefer_lot]
        taken += allocate(rest, left)
        moves = [(lot_id, -take) for lot_id, take in taken]
        await self.repo.move_lots(balance.brand_id, moves)
        await self.repo.record_moves(balance.brand_id, entry_id, moves)
        return sum(t for _, t in taken)

    async def lock(self, brand_id: str, account_id: str) -> PointsBalance:
        return await self.repo.lock_account(brand_id, account_id)

    async def grant(self, brand_id: str, account_id: str, amount: int, *, reason_code: str,
                    source: Source, request_id: str, available_at: datetime | None = None,
                    now: datetime | None = None) -> Change:
        brand_id = require(brand_id, "brand_id")
        account_id = require(account_id, "account_id")
        positive_amount(amount)
        reason = valid_reason(reason_code, "GRANT")
        now = now or self._clock()
        policy = await policy_of(self.conn, brand_id)
        balance = await self.lock(brand_id, account_id)
        points_issued(amount)  # brandclub_points_issued_total, pending grants included
        if available_at is not None and available_at > now:
            change = await self._write(balance, kind=EntryKind.PENDING_GRANT, amount=amount,
                                       available_delta=0, pending_delta=amount,
                                       reason_code=reason, source=source,
                                       request_id=request_id, now=now,
                                       available_at=available_at)
            await self.repo.add_pending(brand_id, change.entry.entry_id, account_id, amount,
                                        available_at)
            return change
        entry_id = new_id("pte")
        await self._credit_lot(policy, balance, entry_id, amount, now)
        change = await self._write(balance, kind=EntryKind.GRANT, amount=amount,
                                   available_delta=amount, pending_delta=0, reason_code=reason,
                                   source=source, request_id=request_id, now=now,
                                   entry_id=entry_id)
        return await self._recover_shortfall(change, request_id, now)

    async def spend(self, brand_id: str, account_id: str, amount: int, *, reason_code: str,
                    source: Source, request_id: str, now: datetime | None = None) -> Change:
        brand_id = require(brand_id, "brand_id")
        account_id = require(account_id, "account_id")
        positive_amount(amount)
        reason = valid_reason(reason_code, "SPEND")
        now = now or self._clock()
        balance = await self.expire_due(brand_id, account_id, now)
        if balance.available < amount:
            raise FailedPrecondition(
                f"{amount} points requested but only {max(balance.available, 0)} available",
                reason="INSUFFICIENT_POINTS",
                metadata={"available_points": str(max(balance.available, 0)),
                          "requested_points": str(amount)})
        entry_id = new_id("pte")
        taken = await self._take(balance, entry_id, amount)
        assert taken == amount, "lots must hold the available balance"
        points_redeemed(amount)  # brandclub_points_redeemed_total
        return await self._write(balance, kind=EntryKind.SPEND, amount=-amount,
                                 available_delta=-amount, pending_delta=0, reason_code=reason,
                                 source=source, request_id=request_id, now=now,
                                 entry_id=entry_id)

    async def take_back(self, balance: PointsBalance, amount: int, *, kind: EntryKind,
                        reason_code: str, source: Source, request_id: str, now: datetime,
                        reverses: str | None = None, prefer_lot: str | None = None) -> Change:
        """Take available points back (a refund after the window, a grant's reversal). When
        there are too few, the policy decides: go negative, or take what is there and record
        the shortfall."""
        policy = await policy_of(self.conn, balance.brand_id)
        entry_id = new_id("pte")
        taken = await self._take(balance, entry_id, amount, prefer_lot)
        if policy.negative_balance_allowed:
            delta, shortfall = -amount, 0
        else:
            delta = -min(amount, max(balance.available, 0))
            shortfall = amount + delta
        assert -delta >= taken
        return await self._write(balance, kind=kind, amount=delta, available_delta=delta,
                                 pending_delta=0, reason_code=reason_code, source=source,
                                 request_id=request_id, now=now, shortfall=shortfall,
                                 reverses=reverses, entry_id=entry_id)

    async def _recover_shortfall(self, change: Change, request_id: str,
                                 now: datetime) -> Change:
        """Pay off a recorded shortfall from points that just became available. Returns the
        change with the balance after the payoff: the caller answers with the true balance,
        never the one between the two entries."""
        balance = change.balance
        pay = min(balance.shortfall, balance.available)
        if pay <= 0:
            return change
        entry_id = new_id("pte")
        await self._take(balance, entry_id, pay)
        recovery = await self._write(balance, kind=EntryKind.SHORTFALL_RECOVERY, amount=-pay,
                                     available_delta=-pay, pending_delta=0,
                                     reason_code="SHORTFALL_RECOVERED", source=Source.SYSTEM,
                                     request_id=request_id, now=now, shortfall=-pay,
                                     entry_id=entry_id)
        return Change(change.entry, recovery.balance)

    async def cancel_pending(self, brand_id: str, pending_entry_id: str, amount: int, *,
                             reason_code: str, source: Source, request_id: str, now: datetime,
                             reverses: str | None = None) -> Change | None:
        """Cancel up to `amount` of a still-pending grant; None when nothing is pending."""
        account_id = await self.repo.pending_account(brand_id, pending_entry_id)
        if account_id is None:
            return None
        balance = await self.lock(brand_id, account_id)  # account first, as everywhere
        pending = await self.repo.pending(brand_id, pending_entry_id)
        if pending is None or pending.state != "pending":
            return None
        cancel = min(amount, pending.amount)
        left = pending.amount - cancel
        await self.repo.update_pending(brand_id, pending_entry_id, amount=left,
                                       state="pending" if left else "cancelled")
        return await self._write(balance, kind=EntryKind.PENDING_CANCEL, amount=-cancel,
                                 available_delta=0, pending_delta=-cancel,
                                 reason_code=reason_code, source=source,
                                 request_id=request_id, now=now, reverses=reverses)

    async def release(self, brand_id: str, account_id: str, pending_entry_id: str,
                      now: datetime | None = None) -> Change | None:
        """Make a due pending grant available; idempotent (None when not due or done)."""
        now = now or self._clock()
        balance = await self.lock(brand_id, account_id)
        pending = await self.repo.pending(brand_id, pending_entry_id)
        if pending is None or pending.state != "pending" or pending.release_at > now:
            return None
        policy = await policy_of(self.conn, brand_id)
        entry_id = new_id("pte")
        await self._credit_lot(policy, balance, entry_id, pending.amount, now)
        await self.repo.update_pending(brand_id, pending_entry_id, amount=0, state="released",
                                       released_amount=pending.amount,
                                       released_entry_id=entry_id)
        change = await self._write(balance, kind=EntryKind.PENDING_RELEASE,
                                   amount=pending.amount, available_delta=pending.amount,
                                   pending_delta=-pending.amount,
                                   reason_code="PENDING_RELEASED", source=Source.SYSTEM,
                                   request_id=f"release:{pending_entry_id}", now=now,
                                   entry_id=entry_id)
        return await self._recover_shortfall(change, change.entry.request_id, now)

    async def expire_due(self, brand_id: str, account_id: str, now: datetime) -> PointsBalance:
        """Lock the account and expire its lots that are due: one EXPIRE entry for all of
        them. Returns the balance after (the account stays locked until commit)."""
        balance = await self.lock(brand_id, account_id)
        due = await self.repo.due_lots(brand_id, account_id, now)
        points = sum(lot.remaining for lot in due)
        if points <= 0:
            return balance
        entry_id = new_id("pte")
        moves = [(lot.lot_id, -lot.remaining) for lot in due]
        await self.repo.move_lots(brand_id, moves)
        await self.repo.record_moves(brand_id, entry_id, moves)
        change = await self._write(balance, kind=EntryKind.EXPIRE, amount=-points,
                                   available_delta=-points, pending_delta=0,
                                   reason_code="POINTS_EXPIRED", source=Source.SYSTEM,
                                   request_id=f"expire:{entry_id}", now=now,
                                   entry_id=entry_id)
        await add_event(self.conn, topic=TOPIC, brand_id=brand_id, producer=PRODUCER,
                        payload=benefits_events_pb2.PointsExpired(
                            brand_id=brand_id, account_id=account_id, points=points,
                            entry_id=entry_id))
        return change.balance

    async def reverse(self, brand_id: str, entry_id: str, *, reason_code: str,
                      request_id: str, now: datetime | None = None) -> Change:
        brand_id = require(brand_id, "brand_id")
        entry_id = require(entry_id, "entry_id")
        reason = valid_reason(reason_code, "REVERSAL")
        now = now or self._clock()
        original = found(await self.repo.entry(brand_id, entry_id), f"points entry {entry_id}",
                         reason="ENTRY_NOT_FOUND", entry_id=entry_id)
        balance = await self.lock(brand_id, original.account_id)
        if await self.repo.is_reversed(brand_id, entry_id):
            raise FailedPrecondition(f"points entry {entry_id} was already reversed",
                                     reason="ENTRY_ALREADY_REVERSED",
                                     metadata={"entry_id": entry_id})
        if original.kind is EntryKind.GRANT:
            return await self.take_back(balance, original.amount, kind=EntryKind.REVERSAL,
                                        reason_code=reason, source=original.source,
                                        request_id=request_id, now=now, reverses=entry_id,
                                        prefer_lot=await self.repo.lot_of_entry(brand_id,
                                                                                entry_id))
        if original.kind is EntryKind.SPEND:
            return await self._return_spend(balance, original, reason, request_id, now)
        if original.kind is EntryKind.PENDING_GRANT:
            pending = await self.repo.pending(brand_id, entry_id)
            assert pending is not None
            if pending.state == "pending":
                change = await self.cancel_pending(brand_id, entry_id, pending.amount,
                                                   reason_code=reason, source=original.source,
                                                   request_id=request_id, now=now,
                                                   reverses=entry_id)
                assert change is not None
                return change
            if pending.state == "released" and pending.released_amount > 0:
                return await self.take_back(balance, pending.released_amount,
                                            kind=EntryKind.REVERSAL, reason_code=reason,
                                            source=original.source, request_id=request_id,
                                            now=now, reverses=entry_id)
            raise FailedPrecondition(f"points entry {entry_id} has nothing left to reverse",
                                     reason="NOTHING_TO_REVERSE",
                                     metadata={"entry_id": entry_id})
        raise FailedPrecondition(
            f"a {original.kind.value} entry cannot be reversed; only grants and spends",
            reason="ENTRY_NOT_REVERSIBLE", metadata={"entry_id": entry_id,
                                                     "kind": original.kind.value})

    async def _return_spend(self, balance: PointsBalance, spend: Entry, reason: str,
                            request_id: str, now: datetime) -> Change:
        """Give a spend's points back into the lots they came from (a lot that expired in the
        meantime gets them back and expires them on the next run)."""
        amount = -spend.amount
        entry_id = new_id("pte")
        credit = max(0, balance.available + amount) - max(0, balance.available)
        moves: list[tuple[str, int]] = []
        for lot_id, moved in await self.repo.moves_of(balance.brand_id, spend.entry_id):
            give = min(-moved, credit)
            if give > 0:
                moves.append((lot_id, give))
                credit -= give
        await self.repo.move_lots(balance.brand_id, moves)
        await self.repo.record_moves(balance.brand_id, entry_id, moves)
        change = await self._write(balance, kind=EntryKind.REVERSAL, amount=amount,
                                   available_delta=amount, pending_delta=0,
                                   reason_code=reason, source=spend.source,
                                   request_id=request_id, now=now, reverses=spend.entry_id,
                                   entry_id=entry_id)
        return await self._recover_shortfall(change, request_id, now)


@dataclass(frozen=True)
class Discrepancy:
    account_id: str
    available: int
    pending: int
    entries_available: int
    entries_pending: int
    lots: int
    shortfall: int
    entries_shortfall: int


async def check_ledger(app: BenefitsContext, brand_id: str, account_id: str | None
                       ) -> tuple[int, list[Discrepancy]]:
    """(accounts checked, accounts whose balances differ from their entries or lots)."""
    async with app.db.connection() as conn:
        rows = await PointsRepository(conn).check(require(brand_id, "brand_id"),
                                                  account_id or None)
    bad = [Discrepancy(r["account_id"], r["available"], r["pending"], r["e_available"],
                       r["e_pending"], r["lots"], r["shortfall"], r["e_shortfall"])
           for r in rows
           if (r["available"] != r["e_available"] or r["pending"] != r["e_pending"]
               or r["pending"] != r["p_pending"] or r["shortfall"] != r["e_shortfall"]
               or r["lots"] != max(r["available"], 0))]
    return len(rows), bad


# --- the rpcs: one coroutine each, owning its flow -----------------------------------------


@dataclass(frozen=True)
class BalanceView:
    balance: PointsBalance
    next_expiry: tuple[datetime, int] | None
    """The soonest expiry time and the points expiring then (None: nothing expires)."""


async def points_balance(app: BenefitsContext, brand_id: str, account_id: str) -> BalanceView:
    await require_member(app.membership, Action.READ_POINTS, brand_id, account_id)
    async with app.db.connection() as conn:
        balance = await PointsRepository(conn).balance(brand_id, account_id)
        soonest = await PointsRepository(conn).expiring(brand_id, account_id, limit=1)
    expiry = soonest[0] if soonest and soonest[0][0] is not None else None
    return BalanceView(balance, (expiry[0], expiry[1]) if expiry and expiry[0] else None)


async def grant_points(app: BenefitsContext, commit_once: CommitOnce[Change, Reply], *,
                       brand_id: str, account_id: str, amount: int, reason_code: str,
                       source: Source, request_id: str, available_at: datetime | None) -> Reply:
    """Grant points to a member (pending until `available_at` when that is later)."""
    await require_member(app.membership, Action.EARN, brand_id, account_id)
    return await commit_once(lambda conn: Ledger(conn, app.clock).grant(
        brand_id, account_id, amount, reason_code=reason_code, source=source,
        request_id=request_id, available_at=available_at))


async def spend_points(app: BenefitsContext, commit_once: CommitOnce[Change, Reply], *,
                       brand_id: str, account_id: str, amount: int, reason_code: str,
                       source: Source, request_id: str) -> Reply:
    await require_member(app.membership, Action.SPEND, brand_id, account_id)
    return await commit_once(lambda conn: Ledger(conn, app.clock).spend(
        brand_id, account_id, amount, reason_code=reason_code, source=source,
        request_id=request_id))


async def reverse_entry(app: BenefitsContext, commit_once: CommitOnce[Change, Reply], *,
                        brand_id: str, entry_id: str, reason_code: str,
                        request_id: str) -> Reply:
    """Reverse a grant or a spend; lands even after the member left (a compensation)."""
    return await commit_once(lambda conn: Ledger(conn, app.clock).reverse(
        brand_id, entry_id, reason_code=reason_code, request_id=request_id))


async def list_entries(app: BenefitsContext, brand_id: str, account_id: str,
                       requested_size: int, token: str) -> tuple[list[Entry], str]:
    """One page of the member's entries, newest first."""
    size = page_size(requested_size)
    await require_member(app.membership, Action.READ_POINTS, brand_id, account_id)
    filters = {"brand_id": brand_id, "account_id": account_id}
    position = decode_page_token(token, ("seq",), filters=filters)
    async with app.db.connection() as conn:
        entries = await PointsRepository(conn).history(
            brand_id, account_id, int(position["seq"]) if position else None, size + 1)
    return keyset_page(entries, size, lambda e: {"seq": e.seq}, filters=filters)


NEVER = "never"
"""The position of the last group, points that never expire."""


async def list_expiring(app: BenefitsContext, brand_id: str, account_id: str,
                        requested_size: int, token: str
                        ) -> tuple[list[tuple[datetime | None, int]], str]:
    """One page of the member's points by expiry time, soonest first, never-expiring last."""
    size = page_size(requested_size)
    await require_member(app.membership, Action.READ_POINTS, brand_id, account_id)
    filters = {"brand_id": brand_id, "account_id": account_id}
    position = decode_page_token(token, ("expire",), filters=filters)
    after = _expire_position(position["expire"]) if position else None
    if after == NEVER:
        return [], ""
    async with app.db.connection() as conn:
        groups = await PointsRepository(conn).expiring(
            brand_id, account_id, after=after if isinstance(after, datetime) else None,
            limit=size + 1)
    return keyset_page(groups, size,
                       lambda g: {"expire": g[0].isoformat() if g[0] else NEVER},
                       filters=filters)


def _expire_position(value: object) -> datetime | str:
    if value == NEVER:
        return NEVER
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise InvalidArgument("page_token names no valid position", field="page_token",
                              reason=PAGE_TOKEN_INVALID)
    return at


MAX_EXPIRING_WITHIN_DAYS = 366


@dataclass(frozen=True)
class ExpiringWindow:
    """Lots expiring in (start, end]; fixed by the first page of a listing."""

    start: datetime
    end: datetime


def expiring_window(within_days: int, now: datetime) -> ExpiringWindow:
    if not 1 <= within_days <= MAX_EXPIRING_WITHIN_DAYS:
        raise InvalidArgument(f"within_days must be between 1 and {MAX_EXPIRING_WITHIN_DAYS}",
                              field="within_days", reason="OUT_OF_RANGE")
    return ExpiringWindow(now, now + timedelta(days=within_days))


@dataclass(frozen=True)
class ExpiringSoonPage:
    accounts: list[tuple[str, int, datetime]]
    """(account, points expiring in the window, earliest expiry), by account id."""
    next_page_token: str
    window: ExpiringWindow


async def points_expiring_soon(app: BenefitsContext, brand_id: str, within_days: int,
                               requested_size: int, token: str) -> ExpiringSoonPage:
    """The brand's accounts with points expiring within the days (for journeys). The window
    is fixed by the first page and carried in the token, so later pages list the same one."""
    size = page_size(requested_size)
    filters = {"brand_id": require(brand_id, "brand_id"), "within_days": within_days}
    position = decode_page_token(token, ("after", "start", "end"), filters=filters)
    if position is None:
        window, after = expiring_window(within_days, app.clock()), ""
    else:
        window, after = _window_of(position), str(position["after"])
    async with app.db.connection() as conn:
        rows = await PointsRepository(conn).expiring_soon(brand_id, window.start, window.end,
                                                          after, size + 1)
    page = rows[:size]
    next_token = ""
    if len(rows) > size:
        next_token = encode_page_token({"after": page[-1][0], "start": window.start.isoformat(),
                                        "end": window.end.isoformat()}, filters=filters)
    return ExpiringSoonPage(page, next_token, window)


def _window_of(position: dict[str, object]) -> ExpiringWindow:
    try:
        start = datetime.fromisoformat(str(position["start"]))
        end = datetime.fromisoformat(str(position["end"]))
    except ValueError:
        raise InvalidArgument("page_token names no valid position", field="page_token",
                              reason=PAGE_TOKEN_INVALID) from None
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise InvalidArgument("page_token names no valid position", field="page_token",
                              reason=PAGE_TOKEN_INVALID)
    return ExpiringWindow(start, end)
