"""Privacy requests: a member's data exported, and erased or pseudonymised on cancellation.

Each service that holds member data declares its holdings once (`Holding`, in its
`adapters/member_data.py`): the table, the predicate that selects one member's rows of one
brand (`$1` the brand id, `$2` the account id), how the rows are exported (columns hidden or
masked) and what happens to them when the member cancels (`Action`): erased, pseudonymised
(the rows stay for accounting or tallies but name no one) or kept for a stated reason. From that
one declaration:

- `export_sections` reads every holding of the member (PIPL / GDPR access request);
- `erase_member` erases and pseudonymises them in the caller's transaction (the cancellation
  itself, or the consumer of MemberCancelled) and records what it did in `member_erasures`
  (libs/runtime_sql/0003), once per cancellation;
- `member_erasures` reads those records back for the brand's erasure report.

Pseudonymised rows get a random pseudonym per cancellation, recorded nowhere, so nothing in
the service links them back to the account. The declarations are the single list the
sweep test (tests/services/test_privacy_sweep.py) holds against every account column of every
schema, so a new table with member data cannot be forgotten.
"""

from __future__ import annotations

import enum
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from libs.db import Connection, Database
from libs.errors import require

# More records than this in one section are left out (the section says so): an export is a
# file a person reads, and no real member comes near it.
EXPORT_LIMIT = 5000


class Action(enum.Enum):
    ERASE = "erased"
    PSEUDONYMISE = "pseudonymised"
    KEEP = "kept"


@dataclass(frozen=True)
class Holding:
    """One table's rows about a member, how they are exported and what cancellation does.

    `where` selects the rows of account `$2` in brand `$1`; `pseudonymise` is the SET clause
    that makes a row name no one (`$3` is the pseudonym); `scrub`, when set, makes ERASE empty
    the row's personal columns (SET clause) instead of deleting it; `keep_reason` says why a
    KEEP row stays. `section` is the export section ("" when the rows are not exported: a projection
    of another service's data that the export already carries from its owner)."""

    table: str
    where: str
    on_cancel: Action
    section: str = ""
    description: str = ""
    order_by: str = ""
    hidden: tuple[str, ...] = ()
    masks: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    pseudonymise: str = "account_id = $3"
    scrub: str = ""
    keep_reason: str = ""
    # What the export reads instead of the whole table: a subquery aliased like the table,
    # for a holding exported as a fact about it (a phone on file) rather than its columns.
    export_from: str = ""

    def __post_init__(self) -> None:
        if self.on_cancel is Action.KEEP and not self.keep_reason:
            raise ValueError(f"{self.table}: a kept holding says why it is kept")
        if self.section and not (self.description and self.order_by):
            raise ValueError(f"{self.table}: an exported holding has a description and order")
        if self.on_cancel is Action.PSEUDONYMISE and "$3" not in self.pseudonymise:
            raise ValueError(f"{self.table}: pseudonymising sets the pseudonym ($3)")


@dataclass(frozen=True)
class Section:
    name: str
    description: str
    records: list[dict[str, Any]]
    truncated: bool = False


@dataclass(frozen=True)
class Removal:
    table: str
    rows: int
    action: Action


@dataclass(frozen=True)
class Erasure:
    member_id: str
    event_id: str
    cancelled_at: datetime
    erased_at: datetime
    removals: list[Removal]


def mask_identifier(value: Any) -> Any:
    """An external id (openid, marketplace id) as the product shows one: the first four and
    last two characters (messaging's mask_openid), never the whole id."""
    text = str(value or "")
    return f"{text[:4]}...{text[-2:]}" if len(text) > 8 else "****"


def member_keys(brand_id: str, account_id: str) -> tuple[str, str]:
    """The request's brand and account, stripped; an empty one is refused by name."""
    return require(brand_id, "brand_id"), require(account_id, "account_id")


def _plain(value: Any) -> Any:
    """A column value as JSON can carry it (timestamps ISO 8601 in UTC, jsonb parsed)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, bytes | bytearray | memoryview):
        return None  # hashes and ciphertext mean nothing to a reader; hidden holdings drop them
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _record(holding: Holding, row: Mapping[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for column, value in row.items():
        if column in holding.hidden:
            continue
        mask = holding.masks.get(column)
        record[column] = _plain(mask(value) if mask is not None else value)
    return record


async def export_sections(conn: Connection, holdings: Sequence[Holding], brand_id: str,
                          account_id: str) -> list[Section]:
    """Every exported holding of the member, one section each (empty sections included, so
    the file shows what the service could hold as well as what it holds)."""
    sections = []
    for holding in holdings:
        if not holding.section:
            continue
        rows = await conn.fetch(
            f"SELECT * FROM {holding.export_from or holding.table} WHERE {holding.where} "
            f"ORDER BY {holding.order_by} LIMIT {EXPORT_LIMIT + 1}", brand_id, account_id)
        sections.append(Section(holding.section, holding.description,
                                [_record(holding, row) for row in rows[:EXPORT_LIMIT]],
                                truncated=len(rows) > EXPORT_LIMIT))
    return sections


def _count(status: str) -> int:
    """Rows touched, from asyncpg's command tag ("DELETE 3", "UPDATE 0")."""
    return int(status.rsplit(" ", 1)[-1])


def _erasing_statement(holding: Holding) -> str:
    if holding.on_cancel is Action.PSEUDONYMISE:
        return f"UPDATE {holding.table} SET {holding.pseudonymise} WHERE {holding.where}"
    if holding.scrub:
        return f"UPDATE {holding.table} SET {holding.scrub} WHERE {holding.where}"
    return f"DELETE FROM {holding.table} WHERE {holding.where}"


async def erase_member(conn: Connection, holdings: Sequence[Holding], *, brand_id: str,
                       account_id: str, member_id: str, event_id: str, cancelled_at: datetime,
                       now: datetime) -> Erasure:
    """Erase and pseudonymise the member's holdings in `conn`'s transaction and record it.

    Once per cancellation: a second call for the same member_id (a redelivered event) finds
    the record, changes nothing and answers no removals."""
    if await conn.fetchval(
            "SELECT true FROM member_erasures WHERE brand_id = $1 AND member_id = $2",
            brand_id, member_id):
        return Erasure(member_id, event_id, cancelled_at, now, [])
    pseudonym = "erased_" + secrets.token_hex(12)
    removals: dict[tuple[str, Action], int] = {}
    for holding in holdings:
        if holding.on_cancel is Action.KEEP:
            continue
        pseudonymising = holding.on_cancel is Action.PSEUDONYMISE
        status = await conn.execute(_erasing_statement(holding), brand_id, account_id,
                                    *([pseudonym] if pseudonymising else []))
        key = (holding.table, holding.on_cancel)
        removals[key] = removals.get(key, 0) + _count(status)
    erasure = Erasure(member_id, event_id, cancelled_at, now,
                      [Removal(table, rows, action) for (table, action), rows in removals.items()])
    await conn.execute(
        "INSERT INTO member_erasures (brand_id, member_id, account_id, event_id, "
        "cancelled_at, erased_at, removals) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        brand_id, member_id, account_id, event_id, cancelled_at, now,
        json.dumps([{"table": r.table, "rows": r.rows, "action": r.action.value}
                    for r in erasure.removals]))
    return erasure


async def member_erasures(conn: Connection, brand_id: str, account_id: str) -> list[Erasure]:
    """The erasures recorded for the account's cancellations in the brand, newest first."""
    rows = await conn.fetch(
        "SELECT member_id, event_id, cancelled_at, erased_at, removals FROM member_erasures "
        "WHERE brand_id = $1 AND account_id = $2 ORDER BY erased_at DESC, member_id",
        brand_id, account_id)
    return [Erasure(row["member_id"], row["event_id"], row["cancelled_at"], row["erased_at"],
                    [Removal(item["table"], int(item["rows"]), Action(item["action"]))
                     for item in json.loads(row["removals"])])
            for row in rows]


class MemberPrivacy:
    """A service's privacy use cases over its declared holdings: export and erasure reads.

    The erasure itself runs in the caller's transaction (`erase_member`), where the service
    handles the cancellation today."""

    def __init__(self, db: Database, holdings: Sequence[Holding]) -> None:
        self._db = db
        self.holdings = tuple(holdings)

    async def export(self, brand_id: str, account_id: str) -> list[Section]:
        """ExportMemberData: one consistent read (one transaction) of every holding."""
        brand_id, account_id = member_keys(brand_id, account_id)
        async with self._db.transaction() as conn:
            return await export_sections(conn, self.holdings, brand_id, account_id)

    async def erasures(self, brand_id: str, account_id: str) -> list[Erasure]:
        """GetMemberErasures: what was removed for each of the account's cancellations."""
        brand_id, account_id = member_keys(brand_id, account_id)
        async with self._db.connection() as conn:
            return await member_erasures(conn, brand_id, account_id)
