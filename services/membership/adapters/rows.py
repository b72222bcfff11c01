"""Rows of the membership schema read back as domain objects, and the column lists and the
growth expression the repositories share."""

from __future__ import annotations

from libs.db import Record
from services.membership.domain.model import (
    Brand,
    Consent,
    Gender,
    Member,
    MemberRecord,
    MemberStatus,
    PhoneMatch,
    Profile,
    ProgramMode,
    Stats,
)

MEMBER_COLUMNS = ("member_id, brand_id, account_id, status, level, source_channel, "
                  "member_since, lv0_notice_pending")
MEMBER_READ = (MEMBER_COLUMNS + ", joined_at, level_since, consent_terms_version, dormant")
GROWTH = ("(SELECT coalesce(sum(o.paid_cents - o.refunded_cents), 0) FROM orders o "
          "WHERE o.brand_id = m.brand_id AND o.account_id = m.account_id "
          "AND o.paid_at >= $3::timestamptz - make_interval(days => "
          "coalesce(p.growth_window_days, 365)))")


def brand_from_row(row: Record) -> Brand:
    return Brand(row["brand_id"], row["display_name"], ProgramMode(row["mode"]),
                 row["time_zone"], row["created_at"], row["lv0_gift_pack_id"])


def member_from_row(row: Record) -> Member:
    return Member(row["member_id"], row["brand_id"], row["account_id"],
                  MemberStatus(row["status"]), row["level"], row["source_channel"],
                  row["member_since"], row["lv0_notice_pending"], row["joined_at"],
                  row["level_since"], row["consent_terms_version"], row["dormant"])


def stats_from_row(row: Record | None, growth: int) -> Stats:
    if row is None:
        return Stats(growth_cents=growth)
    return Stats(row["order_count"], row["paid_cents"], row["first_order_at"],
                 row["last_order_at"], growth)


def record_from_row(row: Record) -> MemberRecord:
    member = member_from_row(row)
    profile = Profile(row["birthday"], Gender(row["gender"]), row["baby_birthday"],
                      row["has_phone"], PhoneMatch(row["phone_match"]), row["encrypted_phone"],
                      row["crm_member_id"])
    consent = None
    if row["consent_at"] is not None and member.status is MemberStatus.CARD_MEMBER:
        consent = Consent(row["consent_terms_version"], tuple(row["consent_purposes"]),
                          row["consent_at"], row["consent_channel"])
    stats = stats_from_row(row if row["stats_account"] is not None else None, int(row["growth"]))
    return MemberRecord(member, profile, consent, stats, row["invite_code"], row["ended_at"])
