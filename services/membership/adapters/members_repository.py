"""Memberships: the per (brand, account) lock, the LV0 and card lifecycle, the card and the
brand-facing reads, and the candidates of the periodic evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from libs.db import Connection, Record
from libs.errors import Aborted
from services.membership.adapters.rows import (
    GROWTH,
    MEMBER_COLUMNS,
    MEMBER_READ,
    brand_from_row,
    member_from_row,
    record_from_row,
)
from services.membership.domain.model import (
    Consent,
    Member,
    MemberCard,
    MemberGroup,
    MemberRecord,
    MemberStatus,
    Profile,
)


class MemberRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def lock_member_slot(self, brand_id: str, account_id: str) -> None:
        """Serialise changes to one shopper's membership of one brand until commit."""
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                                 f"member:{brand_id}:{account_id}")

    async def live_member(self, brand_id: str, account_id: str) -> Member | None:
        row = await self._conn.fetchrow(
            f"SELECT {MEMBER_READ} FROM members "
            "WHERE brand_id = $1 AND account_id = $2 AND status <> 'ended'",
            brand_id, account_id,
        )
        return member_from_row(row) if row else None

    async def add_member(self, member: Member) -> bool:
        """False when a live membership appeared meanwhile (a follower import does not take
        the per-member lock)."""
        added = await self._conn.fetchval(
            f"INSERT INTO members ({MEMBER_COLUMNS}, level_since) "
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
            f"INSERT INTO members ({MEMBER_COLUMNS}, level_since) "
            "SELECT m.*, m.member_since FROM unnest($1::text[], $2::text[], $3::text[], "
            "$4::text[], $5::int[], $6::text[], $7::timestamptz[], $8::bool[]) "
            f"AS m ({MEMBER_COLUMNS}) "
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
                   {GROWTH} AS growth,
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
        return MemberCard(brand_from_row(row), member_from_row(row), list(row["followed"]),
                          row["level_name"] or "", row["current_terms_version"] or "",
                          int(row["growth"]), int(row["next_threshold"] or 0))

    async def member_record(self, brand_id: str, *, member_id: str = "", account_id: str = "",
                            now: datetime) -> MemberRecord | None:
        condition = ("m.member_id = $2" if member_id
                     else "m.account_id = $2 AND m.status <> 'ended'")
        row = await self._conn.fetchrow(
            f"""
            SELECT m.*, {GROWTH} AS growth, s.order_count, s.paid_cents, s.first_order_at,
                   s.last_order_at, s.account_id AS stats_account
            FROM members m
            LEFT JOIN programs p ON p.brand_id = m.brand_id
            LEFT JOIN member_stats s ON s.brand_id = m.brand_id AND s.account_id = m.account_id
            WHERE m.brand_id = $1 AND {condition}
            ORDER BY m.member_since DESC LIMIT 1
            """, brand_id, member_id or account_id, now)
        return record_from_row(row) if row else None

    async def list_members(self, brand_id: str, statuses: Sequence[str],
                           levels: Sequence[int], dormant: bool | None, after: str,
                           limit: int, now: datetime) -> list[MemberRecord]:
        rows = await self._conn.fetch(
            f"""
            SELECT m.*, {GROWTH} AS growth, s.order_count, s.paid_cents, s.first_order_at,
                   s.last_order_at, s.account_id AS stats_account
            FROM members m
            LEFT JOIN programs p ON p.brand_id = m.brand_id
            LEFT JOIN member_stats s ON s.brand_id = m.brand_id AND s.account_id = m.account_id
            WHERE m.brand_id = $1 AND m.status = ANY($4::text[])
              AND (cardinality($5::int[]) = 0 OR m.level = ANY($5::int[]))
              AND ($6::bool IS NULL OR m.dormant = $6) AND m.member_id > $2
            ORDER BY m.member_id LIMIT $7
            """, brand_id, after, now, list(statuses), list(levels), dormant, limit)
        return [record_from_row(row) for row in rows]

    async def count_members(self, brand_id: str) -> list[MemberGroup]:
        rows = await self._conn.fetch(
            "SELECT status, level, dormant, count(*) AS n FROM members "
            "WHERE brand_id = $1 AND status <> 'ended' GROUP BY status, level, dormant",
            brand_id)
        return [MemberGroup(MemberStatus(r["status"]), r["level"], r["dormant"], r["n"])
                for r in rows]

    async def live_members_of_account(self, account_id: str) -> list[Member]:
        rows = await self._conn.fetch(
            f"SELECT {MEMBER_READ} FROM members WHERE account_id = $1 AND status <> 'ended' "
            "ORDER BY brand_id FOR UPDATE", account_id)
        return [member_from_row(row) for row in rows]

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
