"""asyncpg repository for the membership schema."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from libs.db import Connection, Record
from libs.errors import Aborted
from services.membership.domain.model import (
    Brand,
    Consent,
    Gender,
    Member,
    MemberCard,
    MemberRecord,
    MemberStatus,
    PhoneMatch,
    Profile,
    ProgramMode,
    Shop,
    Stats,
)
from services.membership.domain.program import Program, Tier

_MEMBER_COLUMNS = ("member_id, brand_id, account_id, status, level, source_channel, "
                   "member_since, lv0_notice_pending")
_MEMBER_READ = (_MEMBER_COLUMNS + ", joined_at, level_since, consent_terms_version, dormant")
_GROWTH = ("(SELECT coalesce(sum(o.paid_cents - o.refunded_cents), 0) FROM orders o "
           "WHERE o.brand_id = m.brand_id AND o.account_id = m.account_id "
           "AND o.paid_at >= $3::timestamptz - make_interval(days => "
           "coalesce(p.growth_window_days, 365)))")


def _brand(row: Record) -> Brand:
    return Brand(row["brand_id"], row["display_name"], ProgramMode(row["mode"]),
                 row["time_zone"], row["created_at"], row["lv0_gift_pack_id"])


def _member(row: Record) -> Member:
    return Member(row["member_id"], row["brand_id"], row["account_id"],
                  MemberStatus(row["status"]), row["level"], row["source_channel"],
                  row["member_since"], row["lv0_notice_pending"], row["joined_at"],
                  row["level_since"], row["consent_terms_version"], row["dormant"])


def _stats(row: Record | None, growth: int) -> Stats:
    if row is None:
        return Stats(growth_cents=growth)
    return Stats(row["order_count"], row["paid_cents"], row["first_order_at"],
                 row["last_order_at"], growth)


class MembershipRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    # --- brands, shops, programs ---------------------------------------------------------

    async def add_brand(self, brand: Brand) -> None:
        await self._conn.execute(
            "INSERT INTO brands (brand_id, display_name, mode, time_zone, created_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            brand.brand_id, brand.display_name, brand.mode.value, brand.time_zone,
            brand.created_at,
        )

    async def get_brand(self, brand_id: str, *, for_update: bool = False) -> Brand | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM brands WHERE brand_id = $1" + (" FOR UPDATE" if for_update else ""),
            brand_id)
        return _brand(row) if row else None

    async def set_brand_mode(self, brand_id: str, mode: ProgramMode) -> None:
        await self._conn.execute("UPDATE brands SET mode = $2 WHERE brand_id = $1",
                                 brand_id, mode.value)

    async def set_gift_pack(self, brand_id: str, gift_pack_id: str) -> None:
        await self._conn.execute("UPDATE brands SET lv0_gift_pack_id = $2 WHERE brand_id = $1",
                                 brand_id, gift_pack_id)

    async def add_shop(self, shop: Shop) -> None:
        await self._conn.execute(
            "INSERT INTO shops (shop_id, brand_id, display_name, created_at) "
            "VALUES ($1, $2, $3, $4)",
            shop.shop_id, shop.brand_id, shop.display_name, shop.created_at,
        )

    async def get_shop(self, shop_id: str) -> Shop | None:
        row = await self._conn.fetchrow("SELECT * FROM shops WHERE shop_id = $1", shop_id)
        return Shop(row["shop_id"], row["brand_id"], row["display_name"],
                    row["created_at"]) if row else None

    async def list_shops(self, brand_id: str, after: str, limit: int) -> list[Shop]:
        rows = await self._conn.fetch(
            "SELECT * FROM shops WHERE brand_id = $1 AND shop_id > $2 ORDER BY shop_id LIMIT $3",
            brand_id, after, limit)
        return [Shop(r["shop_id"], r["brand_id"], r["display_name"], r["created_at"])
                for r in rows]

    async def get_program(self, brand_id: str) -> Program | None:
        row = await self._conn.fetchrow("SELECT * FROM programs WHERE brand_id = $1", brand_id)
        if row is None:
            return None
        tiers = await self._conn.fetch(
            "SELECT * FROM program_tiers WHERE brand_id = $1 ORDER BY level", brand_id)
        return Program(
            row["program_id"], brand_id, row["terms_version"], row["terms_url"],
            tuple(row["consent_purposes"]),
            tuple(Tier(t["level"], t["name"], t["growth_threshold_cents"],
                       tuple(t["privileges"]), t["points_multiplier_percent"]) for t in tiers),
            row["growth_window_days"], row["retention_days"], row["dormant_after_days"],
            row["updated_at"])

    async def put_program(self, program: Program) -> None:
        await self._conn.execute(
            "INSERT INTO programs (program_id, brand_id, terms_version, terms_url, "
            "consent_purposes, growth_window_days, retention_days, dormant_after_days, "
            "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "ON CONFLICT (brand_id) DO UPDATE SET terms_version = EXCLUDED.terms_version, "
            "terms_url = EXCLUDED.terms_url, consent_purposes = EXCLUDED.consent_purposes, "
            "growth_window_days = EXCLUDED.growth_window_days, "
            "retention_days = EXCLUDED.retention_days, "
            "dormant_after_days = EXCLUDED.dormant_after_days, updated_at = EXCLUDED.updated_at",
            program.program_id, program.brand_id, program.terms_version, program.terms_url,
            list(program.consent_purposes), program.growth_window_days, program.retention_days,
            program.dormant_after_days, program.updated_at)
        await self._conn.execute("DELETE FROM program_tiers WHERE brand_id = $1",
                                 program.brand_id)
        await self._conn.executemany(
            "INSERT INTO program_tiers (brand_id, level, name, growth_threshold_cents, "
            "privileges, points_multiplier_percent) VALUES ($1, $2, $3, $4, $5, $6)",
            [(program.brand_id, t.level, t.name, t.growth_threshold_cents, list(t.privileges),
              t.points_multiplier_percent) for t in program.tiers])

    # --- members -------------------------------------------------------------------------

    async def lock_member_slot(self, brand_id: str, account_id: str) -> None:
        """Serialise changes to one shopper's membership of one brand until commit."""
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                                 f"member:{brand_id}:{account_id}")

    async def live_member(self, brand_id: str, account_id: str) -> Member | None:
        row = await self._conn.fetchrow(
            f"SELECT {_MEMBER_READ} FROM members "
            "WHERE brand_id = $1 AND account_id = $2 AND status <> 'ended'",
            brand_id, account_id,
        )
        return _member(row) if row else None

    async def add_member(self, member: Member) -> bool:
        """False when a live membership appeared meanwhile (a follower import does not take
        the per-member lock)."""
        added = await self._conn.fetchval(
            f"INSERT INTO members ({_MEMBER_COLUMNS}, level_since) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7) "
            "ON CONFLICT (brand_id, account_id) WHERE status <> 'ended' DO NOTHING "
            "RETURNING true",
            member.member_id, member.brand_id, member.account_id, member.status.value,
            member.level, member.source_channel, member.member_since,
            member.lv0_notice_pending,
        )
        return bool(added)

    async def add_lv0_members(self, members: Sequence[Member]) -> int:
        """Insert LV0 members, skipping accounts that hold a live membership already."""
        if not members:
            return 0
        rows = await self._conn.fetch(
            f"INSERT INTO members ({_MEMBER_COLUMNS}, level_since) "
            "SELECT m.*, m.member_since FROM unnest($1::text[], $2::text[], $3::text[], "
            "$4::text[], $5::int[], $6::text[], $7::timestamptz[], $8::bool[]) "
            f"AS m ({_MEMBER_COLUMNS}) "
            "ON CONFLICT (brand_id, account_id) WHERE status <> 'ended' DO NOTHING "
            "RETURNING account_id",
            [m.member_id for m in members], [m.brand_id for m in members],
            [m.account_id for m in members], [m.status.value for m in members],
            [m.level for m in members], [m.source_channel for m in members],
            [m.member_since for m in members], [m.lv0_notice_pending for m in members])
        return len(rows)

    async def end_member(self, member_id: str, now: datetime, reason: str = "") -> None:
        await self._conn.execute(
            "UPDATE members SET status = 'ended', ended_at = $2, updated_at = $2, "
            "end_reason = $3 WHERE member_id = $1",
            member_id, now, reason,
        )

    async def scrub_and_end(self, member_id: str, now: datetime, reason: str) -> None:
        """End the membership and erase the profile the brand was authorised to receive."""
        await self._conn.execute(
            "UPDATE members SET status = 'ended', ended_at = $2, updated_at = $2, "
            "end_reason = $3, birthday = NULL, gender = 'unknown', baby_birthday = NULL, "
            "has_phone = false, encrypted_phone = '', crm_member_id = '', "
            "phone_match = 'not_applicable', invite_code = '', lv0_notice_pending = false "
            "WHERE member_id = $1", member_id, now, reason)
        await self._conn.execute(
            "UPDATE member_consents SET withdrawn_at = $2 WHERE member_id = $1 "
            "AND withdrawn_at IS NULL", member_id, now)

    async def open_card(self, member: Member, *, joined_at: datetime, level: int,
                        source_channel: str, profile: Profile, invite_code: str,
                        shop_id: str, consent: Consent, existing: bool) -> None:
        values = (member.member_id, level, joined_at, profile.birthday, profile.gender.value,
                  profile.baby_birthday, profile.has_phone, profile.phone_match.value,
                  profile.encrypted_phone, profile.crm_member_id, invite_code, shop_id,
                  consent.terms_version, list(consent.purposes), consent.consented_at,
                  consent.channel)
        if existing:
            await self._conn.execute(
                "UPDATE members SET status = 'card_member', level = $2, joined_at = $3, "
                "level_since = $3, birthday = $4, gender = $5, baby_birthday = $6, "
                "has_phone = $7, phone_match = $8, encrypted_phone = $9, crm_member_id = $10, "
                "invite_code = $11, join_shop_id = $12, consent_terms_version = $13, "
                "consent_purposes = $14, consent_at = $15, consent_channel = $16, "
                "lv0_notice_pending = false, updated_at = $3 WHERE member_id = $1", *values)
        else:
            added = await self._conn.fetchval(
                "INSERT INTO members (member_id, level, joined_at, level_since, birthday, "
                "gender, baby_birthday, has_phone, phone_match, encrypted_phone, "
                "crm_member_id, invite_code, join_shop_id, consent_terms_version, "
                "consent_purposes, consent_at, consent_channel, brand_id, account_id, status, "
                "source_channel, member_since) VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, $9, "
                "$10, $11, $12, $13, $14, $15, $16, $17, $18, 'card_member', $19, $3) "
                "ON CONFLICT (brand_id, account_id) WHERE status <> 'ended' DO NOTHING "
                "RETURNING true",
                *values, member.brand_id, member.account_id, source_channel)
            if not added:
                raise Aborted("the membership changed meanwhile; retry the call",
                              reason="CONCURRENT_CHANGE")
        await self._conn.execute(
            "INSERT INTO member_consents (member_id, brand_id, account_id, terms_version, "
            "purposes, channel, consented_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            member.member_id, member.brand_id, member.account_id, consent.terms_version,
            list(consent.purposes), consent.channel, consent.consented_at)

    async def set_level(self, member_id: str, level: int, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE members SET level = $2, level_since = $3, updated_at = $3 "
            "WHERE member_id = $1", member_id, level, now)

    async def clear_notice(self, member_id: str, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE members SET lv0_notice_pending = false, updated_at = $2 "
            "WHERE member_id = $1", member_id, now)

    async def set_dormant(self, member_id: str, dormant: bool, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE members SET dormant = $2, updated_at = $3 WHERE member_id = $1",
            member_id, dormant, now)

    async def add_follow(self, brand_id: str, shop_id: str, account_id: str,
                         now: datetime) -> bool:
        added = await self._conn.fetchval(
            "INSERT INTO follows (brand_id, shop_id, account_id, followed_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
            brand_id, shop_id, account_id, now,
        )
        return bool(added)

    async def add_follows(self, brand_id: str, shop_id: str,
                          follows: Sequence[tuple[str, datetime]]) -> list[tuple[str, datetime]]:
        rows = await self._conn.fetch(
            "INSERT INTO follows (brand_id, shop_id, account_id, followed_at) "
            "SELECT $1, $2, f.account_id, f.followed_at "
            "FROM unnest($3::text[], $4::timestamptz[]) AS f (account_id, followed_at) "
            "ON CONFLICT DO NOTHING RETURNING account_id, followed_at",
            brand_id, shop_id, [f[0] for f in follows], [f[1] for f in follows])
        return [(r["account_id"], r["followed_at"]) for r in rows]

    async def remove_follow(self, shop_id: str, account_id: str) -> bool:
        removed = await self._conn.fetchval(
            "DELETE FROM follows WHERE shop_id = $1 AND account_id = $2 RETURNING true",
            shop_id, account_id,
        )
        return bool(removed)

    async def count_follows(self, brand_id: str, account_id: str) -> int:
        count = await self._conn.fetchval(
            "SELECT count(*) FROM follows WHERE brand_id = $1 AND account_id = $2",
            brand_id, account_id,
        )
        return int(count)

    async def add_behaviours(self, brand_id: str, kind: str,
                             occurrences: Sequence[tuple[str, datetime]]) -> None:
        if occurrences:
            await self._conn.execute(
                "INSERT INTO member_behaviours (brand_id, account_id, kind, occurred_at) "
                "SELECT $1, b.account_id, $2, b.occurred_at "
                "FROM unnest($3::text[], $4::timestamptz[]) AS b (account_id, occurred_at)",
                brand_id, kind, [o[0] for o in occurrences], [o[1] for o in occurrences])

    async def member_card(self, brand_id: str, account_id: str,
                          now: datetime) -> MemberCard | None:
        """The whole card in one round trip: it is read on every shop page."""
        row = await self._conn.fetchrow(
            f"""
            SELECT b.brand_id, b.display_name, b.mode, b.time_zone, b.created_at,
                   b.lv0_gift_pack_id,
                   m.member_id, m.account_id, m.status, m.level, m.source_channel,
                   m.member_since, m.lv0_notice_pending, m.joined_at, m.level_since,
                   m.consent_terms_version, m.dormant,
                   p.terms_version AS current_terms_version,
                   t.name AS level_name, nt.growth_threshold_cents AS next_threshold,
                   {_GROWTH} AS growth,
                   ARRAY(SELECT f.shop_id FROM follows f
                         WHERE f.brand_id = m.brand_id AND f.account_id = m.account_id
                         ORDER BY f.followed_at, f.shop_id) AS followed
            FROM members m JOIN brands b ON b.brand_id = m.brand_id
            LEFT JOIN programs p ON p.brand_id = m.brand_id
            LEFT JOIN program_tiers t ON t.brand_id = m.brand_id AND t.level = m.level
            LEFT JOIN program_tiers nt ON nt.brand_id = m.brand_id AND nt.level = m.level + 1
                                      AND m.status = 'card_member'
            WHERE m.brand_id = $1 AND m.account_id = $2 AND m.status <> 'ended'
            """,
            brand_id, account_id, now,
        )
        if row is None:
            return None
        return MemberCard(_brand(row), _member(row), list(row["followed"]),
                          row["level_name"] or "", row["current_terms_version"] or "",
                          int(row["growth"]), int(row["next_threshold"] or 0))

    async def member_record(self, brand_id: str, *, member_id: str = "", account_id: str = "",
                            now: datetime) -> MemberRecord | None:
        condition = ("m.member_id = $2" if member_id
                     else "m.account_id = $2 AND m.status <> 'ended'")
        row = await self._conn.fetchrow(
            f"""
            SELECT m.*, {_GROWTH} AS growth, s.order_count, s.paid_cents, s.first_order_at,
                   s.last_order_at, s.account_id AS stats_account
            FROM members m
            LEFT JOIN programs p ON p.brand_id = m.brand_id
            LEFT JOIN member_stats s ON s.brand_id = m.brand_id AND s.account_id = m.account_id
            WHERE m.brand_id = $1 AND {condition}
            ORDER BY m.member_since DESC LIMIT 1
            """, brand_id, member_id or account_id, now)
        return _record(row) if row else None

    async def list_members(self, brand_id: str, statuses: Sequence[str],
                           levels: Sequence[int], dormant: bool | None, after: str,
                           limit: int, now: datetime) -> list[MemberRecord]:
        rows = await self._conn.fetch(
            f"""
            SELECT m.*, {_GROWTH} AS growth, s.order_count, s.paid_cents, s.first_order_at,
                   s.last_order_at, s.account_id AS stats_account
            FROM members m
            LEFT JOIN programs p ON p.brand_id = m.brand_id
            LEFT JOIN member_stats s ON s.brand_id = m.brand_id AND s.account_id = m.account_id
            WHERE m.brand_id = $1 AND m.status = ANY($4::text[])
              AND (cardinality($5::int[]) = 0 OR m.level = ANY($5::int[]))
              AND ($6::bool IS NULL OR m.dormant = $6) AND m.member_id > $2
            ORDER BY m.member_id LIMIT $7
            """, brand_id, after, now, list(statuses), list(levels), dormant, limit)
        return [_record(row) for row in rows]

    async def count_members(self, brand_id: str) -> list[Record]:
        return await self._conn.fetch(
            "SELECT status, level, dormant, count(*) AS n FROM members "
            "WHERE brand_id = $1 AND status <> 'ended' GROUP BY status, level, dormant",
            brand_id)

    async def live_members_of_account(self, account_id: str) -> list[Member]:
        rows = await self._conn.fetch(
            f"SELECT {_MEMBER_READ} FROM members WHERE account_id = $1 AND status <> 'ended' "
            "ORDER BY brand_id FOR UPDATE", account_id)
        return [_member(row) for row in rows]

    # --- facts ---------------------------------------------------------------------------

    async def claim_fact(self, brand_id: str, event_id: str, kind: str) -> bool:
        claimed = await self._conn.fetchval(
            "INSERT INTO ingested_facts (brand_id, event_id, kind) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING RETURNING true", brand_id, event_id, kind)
        return bool(claimed)

    async def add_order(self, brand_id: str, order_id: str, shop_id: str, account_id: str,
                        paid_cents: int, paid_at: datetime,
                        return_window_end: datetime | None) -> bool:
        added = await self._conn.fetchval(
            "INSERT INTO orders (brand_id, order_id, shop_id, account_id, paid_cents, paid_at, "
            "return_window_end_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT DO NOTHING RETURNING true",
            brand_id, order_id, shop_id, account_id, paid_cents, paid_at, return_window_end)
        return bool(added)

    async def get_order(self, brand_id: str, order_id: str) -> Record | None:
        return await self._conn.fetchrow(
            "SELECT * FROM orders WHERE brand_id = $1 AND order_id = $2 FOR UPDATE",
            brand_id, order_id)

    async def add_refund(self, brand_id: str, refund_id: str, order_id: str, cents: int,
                         refunded_at: datetime) -> bool:
        added = await self._conn.fetchval(
            "INSERT INTO order_refunds (brand_id, refund_id, order_id, refunded_cents, "
            "refunded_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
            brand_id, refund_id, order_id, cents, refunded_at)
        return bool(added)

    async def refund_order(self, brand_id: str, order_id: str, cents: int) -> int:
        return int(await self._conn.fetchval(
            "UPDATE orders SET refunded_cents = refunded_cents + $3 "
            "WHERE brand_id = $1 AND order_id = $2 RETURNING refunded_cents",
            brand_id, order_id, cents))

    async def stats_after_paid(self, brand_id: str, account_id: str, cents: int,
                               paid_at: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO member_stats (brand_id, account_id, order_count, paid_cents, "
            "first_order_at, last_order_at) VALUES ($1, $2, 1, $3, $4, $4) "
            "ON CONFLICT (brand_id, account_id) DO UPDATE SET "
            "order_count = member_stats.order_count + 1, "
            "paid_cents = member_stats.paid_cents + $3, "
            "first_order_at = least(member_stats.first_order_at, $4), "
            "last_order_at = greatest(member_stats.last_order_at, $4)",
            brand_id, account_id, cents, paid_at)

    async def stats_after_refund(self, brand_id: str, account_id: str, cents: int,
                                 order_fully_refunded: bool) -> None:
        await self._conn.execute(
            "UPDATE member_stats SET paid_cents = paid_cents - $3, "
            "order_count = order_count - (CASE WHEN $4 THEN 1 ELSE 0 END) "
            "WHERE brand_id = $1 AND account_id = $2",
            brand_id, account_id, cents, order_fully_refunded)

    async def stats(self, brand_id: str, account_id: str, growth: int) -> Stats:
        row = await self._conn.fetchrow(
            "SELECT * FROM member_stats WHERE brand_id = $1 AND account_id = $2",
            brand_id, account_id)
        return _stats(row, growth)

    async def growth(self, brand_id: str, account_id: str, since: datetime) -> int:
        return int(await self._conn.fetchval(
            "SELECT coalesce(sum(paid_cents - refunded_cents), 0) FROM orders "
            "WHERE brand_id = $1 AND account_id = $2 AND paid_at >= $3",
            brand_id, account_id, since))

    async def card_members_with_growth(self, brand_id: str, since: datetime, after: str,
                                       limit: int) -> list[Record]:
        return await self._conn.fetch(
            "SELECT m.member_id, m.account_id, m.level, m.level_since, "
            "(SELECT coalesce(sum(o.paid_cents - o.refunded_cents), 0) FROM orders o "
            " WHERE o.brand_id = m.brand_id AND o.account_id = m.account_id "
            " AND o.paid_at >= $2) AS growth "
            "FROM members m WHERE m.brand_id = $1 AND m.status = 'card_member' "
            "AND m.member_id > $3 ORDER BY m.member_id LIMIT $4",
            brand_id, since, after, limit)

    async def dormancy_candidates(self, brand_id: str, after: str, limit: int) -> list[Record]:
        return await self._conn.fetch(
            "SELECT m.member_id, m.account_id, m.dormant, m.member_since, "
            "coalesce(a.abnormal, false) AS abnormal, a.last_active_at "
            "FROM members m LEFT JOIN account_states a ON a.account_id = m.account_id "
            "WHERE m.brand_id = $1 AND m.status <> 'ended' AND m.member_id > $2 "
            "ORDER BY m.member_id LIMIT $3", brand_id, after, limit)

    async def account_state(self, account_id: str) -> tuple[bool, datetime | None]:
        row = await self._conn.fetchrow(
            "SELECT abnormal, last_active_at FROM account_states WHERE account_id = $1",
            account_id)
        return (bool(row["abnormal"]), row["last_active_at"]) if row else (False, None)

    async def set_account_abnormal(self, account_id: str, abnormal: bool,
                                   now: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO account_states (account_id, abnormal, updated_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (account_id) DO UPDATE SET abnormal = EXCLUDED.abnormal, "
            "updated_at = EXCLUDED.updated_at", account_id, abnormal, now)

    async def set_account_active(self, account_id: str, active_at: datetime,
                                 now: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO account_states (account_id, last_active_at, updated_at) "
            "VALUES ($1, $2, $3) ON CONFLICT (account_id) DO UPDATE SET "
            "last_active_at = greatest(account_states.last_active_at, EXCLUDED.last_active_at), "
            "updated_at = EXCLUDED.updated_at", account_id, active_at, now)

    async def brand_ids(self) -> list[str]:
        rows = await self._conn.fetch("SELECT brand_id FROM brands ORDER BY brand_id")
        return [row["brand_id"] for row in rows]


def _record(row: Record) -> MemberRecord:
    member = Member(row["member_id"], row["brand_id"], row["account_id"],
                    MemberStatus(row["status"]), row["level"], row["source_channel"],
                    row["member_since"], row["lv0_notice_pending"], row["joined_at"],
                    row["level_since"], row["consent_terms_version"], row["dormant"])
    profile = Profile(row["birthday"], Gender(row["gender"]), row["baby_birthday"],
                      row["has_phone"], PhoneMatch(row["phone_match"]), row["encrypted_phone"],
                      row["crm_member_id"])
    consent = None
    if row["consent_at"] is not None and member.status is MemberStatus.CARD_MEMBER:
        consent = Consent(row["consent_terms_version"], tuple(row["consent_purposes"]),
                          row["consent_at"], row["consent_channel"])
    stats = _stats(row if row["stats_account"] is not None else None, int(row["growth"]))
    return MemberRecord(member, profile, consent, stats, row["invite_code"], row["ended_at"])
