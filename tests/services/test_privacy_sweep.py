"""The privacy sweep: every table that names an account, in every service's schema, is either
erased or pseudonymised when the member cancels, or kept on an explicit keep-list with its
reason (libs.privacy holdings, one declaration per service); and every declared holding's
export and erasure statements run against the real schema."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from libs.privacy import Action, Holding, erase_member, export_sections
from services.benefits.adapters.member_data import HOLDINGS as BENEFITS
from services.engagement.adapters.member_data import HOLDINGS as ENGAGEMENT
from services.identity.adapters.member_data import HOLDINGS as IDENTITY
from services.membership.adapters.member_data import HOLDINGS as MEMBERSHIP
from services.messaging.adapters.member_data import HOLDINGS as MESSAGING

HOLDINGS: dict[str, tuple[Holding, ...]] = {
    "identity": IDENTITY, "membership": MEMBERSHIP, "benefits": BENEFITS,
    "engagement": ENGAGEMENT, "messaging": MESSAGING}
# libs' own tables in every schema (libs/runtime_sql), with why they keep the account id.
RUNTIME_KEEP = {
    "member_erasures": "the erasure record itself: which cancellation was honoured, when and "
                       "how, kept as the brand's evidence (GDPR art. 5(2)); no personal data "
                       "beyond the opaque account id",
}


async def _account_tables(db_url: str, schema: str) -> set[str]:
    """Tables of the schema with a column naming an account (account_id, *_account_id)."""
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT DISTINCT table_name FROM information_schema.columns "
            "WHERE table_schema = $1 AND (column_name = 'account_id' "
            "OR column_name LIKE '%\\_account\\_id') "
            "AND table_name IN (SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = $1 AND table_type = 'BASE TABLE')", schema)
    finally:
        await conn.close()
    return {row["table_name"] for row in rows}


@pytest.mark.parametrize("service", list(HOLDINGS))
async def test_every_account_table_is_erased_pseudonymised_or_kept_for_a_reason(
        db_url: str, service: str) -> None:
    """A new table with an account column fails here until its holding says what happens to
    it on cancellation; a kept one always states why (libs.privacy refuses one without)."""
    declared = {holding.table for holding in HOLDINGS[service]}
    undeclared = await _account_tables(db_url, service) - declared - set(RUNTIME_KEEP)
    assert undeclared == set(), (
        f"{service}: tables with an account column and no holding in "
        f"services/{service}/adapters/member_data.py: {sorted(undeclared)}")
    assert all(h.keep_reason for h in HOLDINGS[service] if h.on_cancel is Action.KEEP)


@pytest.mark.parametrize("service", list(HOLDINGS))
async def test_every_holding_runs_on_the_real_schema(db_url: str, service: str) -> None:
    """Each holding's export query and erasure statement are valid SQL over the schema (run
    in a transaction that is rolled back), and a second erasure of the same cancellation
    changes nothing."""
    conn = await asyncpg.connect(db_url, server_settings={"search_path": service})
    try:
        transaction = conn.transaction()
        await transaction.start()
        sections = await export_sections(conn, HOLDINGS[service], "brd_1", "acc_1")
        assert [s.name for s in sections] == [h.section for h in HOLDINGS[service] if h.section]
        now = datetime.now(UTC)
        first = await erase_member(conn, HOLDINGS[service], brand_id="brd_1",
                                   account_id="acc_1", member_id="mem_1", event_id="evt_1",
                                   cancelled_at=now, now=now)
        assert {(r.table, r.action) for r in first.removals} == {
            (h.table, h.on_cancel) for h in HOLDINGS[service] if h.on_cancel is not Action.KEEP}
        again = await erase_member(conn, HOLDINGS[service], brand_id="brd_1",
                                   account_id="acc_1", member_id="mem_1", event_id="evt_1",
                                   cancelled_at=now, now=now)
        assert again.removals == []
        assert await conn.fetchval("SELECT count(*) FROM member_erasures") == 1
        await transaction.rollback()
    finally:
        await conn.close()


def test_sections_have_unique_names_per_service() -> None:
    """A section name appears once per service: the file is keyed by it."""
    for service, holdings in HOLDINGS.items():
        names = [h.section for h in holdings if h.section]
        assert len(names) == len(set(names)), service
