"""Citus readiness (issue 17, docs/scale.md): every table's primary key leads with `brand_id`,
the distribution column, so each brand's rows live on one shard and every per-brand query is
routed to one node; identity's global tables lead with the account instead.

The rule is read from a migrated database (pg_index), not from the migration files, so a table
added by any service's migration is checked the day it lands. Tables that break the rule are
named below with the reason they may (infrastructure, reference tables) or the debt they are
(keyed by a brand-owned id; the fix is in docs/scale.md). The allow-list cannot go stale: an
entry whose table is gone or now follows the rule fails too, so it shrinks as debts are paid.
The hottest query of member data, the member card, is checked to probe by brand, never scan.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from services.membership.adapters.members_repository import MemberRepository
from tools.bench_scale import SHOPS, Brand, load

# Per-service infrastructure, never distributed: each service's own bookkeeping, read by its
# own process and never joined with member data (on Citus: local tables on the coordinator).
_INFRASTRUCTURE = {
    "schema_migrations": "applied migration versions; one row per file",
    "idempotency_keys": "request-id replay cache, keyed by (method, request_id)",
    "outbox": "events waiting for the bus, drained in id order",
    "processed_events": "consumer dedup, keyed by (consumer_group, event_id)",
}
SERVICES = ("identity", "membership", "benefits", "engagement", "messaging")

# Tables that may lead with something else, and why. "DEBT" marks a brand-owned table keyed by
# its own id: distributing it by brand needs brand_id added to its key (docs/scale.md lists
# the migration for each).
ALLOWED: dict[tuple[str, str], str] = {
    **{(service, table): f"infrastructure: {why}" for service in SERVICES
       for table, why in _INFRASTRUCTURE.items()},
    # Global tables: brands themselves and the marketplace's accounts are not brand data.
    ("membership", "account_states"): "marketplace account state, global: leads with account",
    ("identity", "merchant_users"): "console users, global: a reference table",
    ("identity", "phone_match_imports"): "global import jobs, keyed by import id",
    ("identity", "phone_match_import_errors"): "rows of a global import job",
    ("identity", "phone_reveals"): "audit of phone reveals, global, append-only",
    ("identity", "identity_link_history"): "audit of account links, global, append-only",
    ("identity", "linked_identities"): "global lookup from an external id to the account",
    ("identity", "isv_apps"): "open-platform apps, global: a reference table",
    ("identity", "isv_authorizations"): "ISV grants, looked up by id from any brand's call",
    ("identity", "isv_codes"): "one-time OAuth codes, looked up by hash",
    ("identity", "isv_tokens"): "access tokens, looked up by hash on every open-platform call",
    # Debts: brand-owned rows keyed by their own id (the id is unique, the brand is a column).
    ("membership", "members"): "DEBT: keyed by member_id; every query also has brand_id",
    ("membership", "shops"): "DEBT: keyed by shop_id; small, could be a reference table",
    ("membership", "follows"): "DEBT: keyed by (shop_id, account_id); has brand_id",
    ("membership", "programs"): "DEBT: keyed by program_id, one per brand (brand_id UNIQUE)",
    ("membership", "segments"): "DEBT: keyed by segment_id; every query has brand_id",
    ("membership", "segment_snapshots"): "DEBT: keyed by snapshot_id; queries have brand_id",
    ("membership", "segment_snapshot_members"): "DEBT: keyed by snapshot_id, no brand_id",
    ("membership", "member_dormancy_changes"): "DEBT: keyed by an identity seq; has brand_id",
    ("membership", "member_behaviours"): "DEBT: no primary key; indexed by brand_id first",
    ("benefits", "points_lot_moves"): "DEBT: no primary key",
    ("engagement", "activities"): "DEBT: keyed by activity_id",
    ("engagement", "draw_sagas"): "DEBT: keyed by saga_id",
    ("engagement", "invite_codes"): "DEBT: keyed by the code",
    ("engagement", "koi_draws"): "DEBT: keyed by activity_id",
    ("engagement", "koi_entries"): "DEBT: keyed by activity_id",
    ("engagement", "lottery_draws"): "DEBT: keyed by draw_id",
    ("engagement", "lottery_prizes"): "DEBT: keyed by activity_id",
    ("engagement", "quiz_attempts"): "DEBT: keyed by activity_id",
    ("engagement", "reward_grants"): "DEBT: keyed by grant_id",
    ("engagement", "sign_ins"): "DEBT: keyed by activity_id",
    ("engagement", "vote_tallies"): "DEBT: keyed by activity_id",
    ("engagement", "votes"): "DEBT: keyed by activity_id",
    ("messaging", "campaigns"): "DEBT: keyed by campaign_id",
    ("messaging", "campaign_recipients"): "DEBT: keyed by campaign_id",
    ("messaging", "inbox_messages"): "DEBT: keyed by message_id",
    ("messaging", "journeys"): "DEBT: keyed by journey_id",
    ("messaging", "journey_entries"): "DEBT: keyed by journey_id",
    ("messaging", "journey_refusals"): "DEBT: keyed by journey_id",
    ("messaging", "journey_runs"): "DEBT: keyed by run_id",
    ("messaging", "journey_step_log"): "DEBT: keyed by run_id",
    ("messaging", "outbound_messages"): "DEBT: keyed by message_id",
    ("messaging", "sandbox_deliveries"): "DEBT: keyed by delivery_id",
    ("messaging", "templates"): "DEBT: keyed by template_id",
}

# identity's global tables lead with the account (its brand-scoped ones with brand_id).
GLOBAL_LEADING_COLUMN = {"identity": "account_id"}

_PRIMARY_KEYS = """
    SELECT c.table_schema, c.table_name,
           (SELECT a.attname FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
            WHERE i.indrelid = format('%I.%I', c.table_schema, c.table_name)::regclass
              AND i.indisprimary) AS leading
    FROM information_schema.tables c
    WHERE c.table_type = 'BASE TABLE' AND c.table_schema = ANY($1::text[])
"""


async def _leading_columns(url: str) -> dict[tuple[str, str], str | None]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(_PRIMARY_KEYS, list(SERVICES))
    finally:
        await conn.close()
    return {(r["table_schema"], r["table_name"]): r["leading"] for r in rows}


def _follows_rule(schema: str, leading: str | None) -> bool:
    return leading == "brand_id" or (leading is not None
                                      and leading == GLOBAL_LEADING_COLUMN.get(schema))


async def test_every_primary_key_leads_with_the_distribution_column(db_url: str) -> None:
    tables = await _leading_columns(db_url)
    assert len(tables) > 40, f"the sweep read too few tables: {sorted(tables)}"
    breaking = {f"{schema}.{table}": leading for (schema, table), leading in tables.items()
                if not _follows_rule(schema, leading) and (schema, table) not in ALLOWED}
    assert breaking == {}, (
        "these tables' primary keys do not lead with brand_id (identity: account_id); lead "
        f"with it, or add the table to ALLOWED with the reason (docs/scale.md): {breaking}")


async def test_the_allow_list_names_only_tables_that_break_the_rule(db_url: str) -> None:
    tables = await _leading_columns(db_url)
    stale = sorted(f"{schema}.{table}" for schema, table in ALLOWED
                   if (schema, table) not in tables
                   or _follows_rule(schema, tables[(schema, table)]))
    assert stale == [], f"remove these from ALLOWED (gone, or now follow the rule): {stale}"


def test_the_rule_itself() -> None:
    """brand_id leads member data; identity's global tables lead with the account; a missing
    key fails."""
    assert _follows_rule("membership", "brand_id")
    assert not _follows_rule("membership", "member_id")
    assert not _follows_rule("membership", None)
    assert _follows_rule("identity", "account_id")
    assert _follows_rule("identity", "brand_id")
    assert not _follows_rule("identity", "external_id")
    assert not _follows_rule("membership", "account_id")


# The hot path's member-data tables: a member card read may probe them, never scan them.
_MEMBER_DATA = ("members", "follows", "orders", "member_stats", "member_points")


async def _sequential_scans(conn: asyncpg.Connection) -> dict[str, int]:
    await conn.execute("SELECT pg_stat_force_next_flush()")
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    rows = await conn.fetch("SELECT relname, seq_scan FROM pg_stat_user_tables "
                            "WHERE schemaname = 'membership' AND relname = ANY($1::text[])",
                            list(_MEMBER_DATA))
    return {r["relname"]: r["seq_scan"] for r in rows}


async def test_the_member_card_read_never_scans_a_brand(db_url: str) -> None:
    """The card's one query (membership's MemberRepository.member_card) over a brand of 4,000
    generated members: the sequential-scan counters of the member data do not move."""
    conn = await asyncpg.connect(db_url, server_settings={"search_path": "membership"})
    try:
        await conn.execute("INSERT INTO brands (brand_id, display_name, mode, time_zone) "
                           "VALUES ('brd_hot', 'Hot', 'non_connected', 'Asia/Shanghai')")
        await conn.executemany("INSERT INTO shops (shop_id, brand_id, display_name) "
                               "VALUES ($1, 'brd_hot', 'Shop')",
                               [(f"shop_hot_{s}",) for s in range(SHOPS)])
        await load(db_url, Brand("brd_hot", "shop_hot", "hot", 4000), datetime.now(UTC))
        before = await _sequential_scans(conn)
        repository = MemberRepository(conn)
        cards = [await repository.member_card("brd_hot", f"acc_hot_{n}", datetime.now(UTC))
                 for n in range(1, 41)]
        assert sum(card is not None for card in cards) > 30  # ended members have none
        assert await _sequential_scans(conn) == before
    finally:
        await conn.close()
