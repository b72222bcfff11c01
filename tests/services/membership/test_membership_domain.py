"""Membership's domain rules, without a database: brands, members and cards
(`domain/model.py`), programs and tiers (`domain/program.py`) and input checks
(`domain/inputs.py`). Threshold edges of tiers, retention and dormancy are in
test_membership_boundaries.py; flows through the service in the gRPC tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from libs.errors import FailedPrecondition, InvalidArgument, NotFound
from services.membership.domain.inputs import (
    MAX_ID_LENGTH,
    occurred_at,
    valid_account,
    valid_channel,
    valid_identifier,
    valid_invite_code,
)
from services.membership.domain.model import (
    DEFAULT_TIME_ZONE,
    MAX_NAME_LENGTH,
    Brand,
    ConsentState,
    Member,
    MemberCard,
    MemberGroup,
    MemberStatus,
    PhoneMatch,
    PhoneMatchResult,
    ProgramMode,
    after_unfollow,
    member_from_follow,
    membership_found,
    new_id,
    phone_match_of,
    tally,
    valid_display_name,
    valid_time_zone,
)
from services.membership.domain.program import (
    Program,
    Tier,
    check_consent,
    parse_date,
    valid_program,
    valid_tiers,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BRAND = Brand("brd_1", "Acme", ProgramMode.NON_CONNECTED, "Asia/Shanghai", NOW)
TIERS = (Tier(1, "Silver", 0, ("birthday_gift",), 100), Tier(2, "Gold", 50_000, (), 150),
         Tier(3, "Diamond", 200_000, ("vip_line",), 200))
PROGRAM = Program("prg_1", "brd_1", "2024-06", "", ("profile", "marketing_sms"), TIERS, 365, 30,
                  90, NOW)


def member(status: MemberStatus = MemberStatus.CARD_MEMBER, **changes: object) -> Member:
    base = Member("mbr_1", "brd_1", "acc_1", status, 1, "storefront", NOW,
                  consent_terms_version="2024-06")
    return replace(base, **changes)  # type: ignore[arg-type]


def refusal(error: pytest.ExceptionInfo[InvalidArgument]) -> tuple[str, str]:
    return error.value.field, error.value.reason


# --- brands ------------------------------------------------------------------------------


def test_new_ids_carry_their_prefix_and_never_repeat() -> None:
    ids = {new_id("mbr") for _ in range(1000)}
    assert len(ids) == 1000 and all(i.startswith("mbr_") for i in ids)


def test_display_name_is_trimmed_required_and_bounded() -> None:
    assert valid_display_name("  Acme ") == "Acme"
    assert valid_display_name("x" * MAX_NAME_LENGTH) == "x" * MAX_NAME_LENGTH
    with pytest.raises(InvalidArgument) as too_long:
        valid_display_name("x" * (MAX_NAME_LENGTH + 1))
    assert refusal(too_long) == ("display_name", "NAME_TOO_LONG")
    with pytest.raises(InvalidArgument) as blank:
        valid_display_name("   ", "name")
    assert blank.value.field == "name"


def test_time_zone_defaults_and_must_be_iana() -> None:
    assert valid_time_zone("") == DEFAULT_TIME_ZONE
    assert valid_time_zone(" Europe/Paris ") == "Europe/Paris"
    for bad in ("Mars/Olympus", "../etc/passwd", "UTC+8"):
        with pytest.raises(InvalidArgument) as error:
            valid_time_zone(bad)
        assert refusal(error) == ("time_zone", "UNKNOWN_TIME_ZONE")


# --- members and cards -------------------------------------------------------------------


def test_a_follower_becomes_lv0_at_level_zero() -> None:
    lv0 = member_from_follow("brd_1", "acc_1", "", NOW)
    assert (lv0.status, lv0.level, lv0.source_channel, lv0.member_since) == (
        MemberStatus.LV0, 0, "storefront", NOW)
    assert not lv0.is_card_member
    assert member_from_follow("brd_1", "acc_1", "live", NOW).source_channel == "live"


def test_lv0_ends_with_the_last_unfollow_and_a_card_member_stays() -> None:
    lv0 = member(MemberStatus.LV0, level=0)
    assert after_unfollow(lv0, 1) == lv0
    assert after_unfollow(lv0, 0).status is MemberStatus.ENDED
    card = member()
    assert after_unfollow(card, 0) == card


@pytest.mark.parametrize(("status", "consented", "current", "state"), [
    (MemberStatus.CARD_MEMBER, "2024-06", "2024-06", ConsentState.CURRENT),
    (MemberStatus.CARD_MEMBER, "2023-01", "2024-06", ConsentState.OUTDATED),
    (MemberStatus.CARD_MEMBER, "", "2024-06", ConsentState.NONE),
    (MemberStatus.LV0, "2024-06", "2024-06", ConsentState.NONE),
])
def test_consent_state_compares_the_accepted_terms_with_the_current(
        status: MemberStatus, consented: str, current: str, state: ConsentState) -> None:
    card = MemberCard(BRAND, member(status, consent_terms_version=consented),
                      current_terms_version=current)
    assert card.consent_state is state


def test_gift_pack_is_offered_to_lv0_only_and_only_when_the_brand_has_one() -> None:
    with_pack = replace(BRAND, lv0_gift_pack_id="gp_1")
    assert MemberCard(with_pack, member(MemberStatus.LV0)).gift_pack_offered
    assert not MemberCard(with_pack, member()).gift_pack_offered
    assert not MemberCard(BRAND, member(MemberStatus.LV0)).gift_pack_offered


def test_only_a_match_carries_the_brands_identifiers() -> None:
    assert phone_match_of(None) == (PhoneMatch.NOT_APPLICABLE, "", "")
    assert phone_match_of(PhoneMatchResult(True, "enc", "crm_9")) == (
        PhoneMatch.MATCHED, "enc", "crm_9")
    assert phone_match_of(PhoneMatchResult(False, "enc", "crm_9")) == (PhoneMatch.NEW, "", "")


def test_a_missing_membership_is_member_not_found_naming_the_brand() -> None:
    assert membership_found("card", "brd_1", "acc_1") == "card"
    with pytest.raises(NotFound) as error:
        membership_found(None, "brd_1", "acc_1")
    assert error.value.reason == "MEMBER_NOT_FOUND"
    assert error.value.metadata == {"brand_id": "brd_1"}
    assert "acc_1" in error.value.message


def test_counts_split_lv0_and_card_members_by_dormancy_and_card_members_by_level() -> None:
    counts = tally([
        MemberGroup(MemberStatus.LV0, 0, False, 7), MemberGroup(MemberStatus.LV0, 0, True, 2),
        MemberGroup(MemberStatus.CARD_MEMBER, 3, False, 1),
        MemberGroup(MemberStatus.CARD_MEMBER, 1, False, 4),
        MemberGroup(MemberStatus.CARD_MEMBER, 1, True, 5),
    ])
    assert (counts.lv0_valid, counts.lv0_dormant, counts.card_valid, counts.card_dormant) == (
        7, 2, 5, 5)
    assert list(counts.levels.items()) == [(1, (4, 5)), (3, (1, 0))]
    assert tally([]).levels == {}


# --- programs ----------------------------------------------------------------------------


def test_next_level_growth_is_the_next_threshold_and_zero_at_the_top() -> None:
    assert PROGRAM.next_level_growth(1) == 50_000
    assert PROGRAM.next_level_growth(2) == 200_000
    assert PROGRAM.next_level_growth(3) == 0
    assert PROGRAM.tier(2) == TIERS[1] and PROGRAM.tier(9) is None


def test_growth_counts_over_the_programs_window() -> None:
    assert PROGRAM.growth_since(NOW) == NOW - timedelta(days=365)


def test_tiers_are_sorted_and_must_be_consecutive_and_increasing() -> None:
    assert valid_tiers(list(reversed(TIERS))) == TIERS
    with pytest.raises(InvalidArgument) as empty:
        valid_tiers([])
    assert refusal(empty) == ("tiers", "TIERS_REQUIRED")
    with pytest.raises(InvalidArgument) as gap:
        valid_tiers([TIERS[0], TIERS[2]])
    assert refusal(gap) == ("tiers[1].level", "TIER_LEVELS_NOT_CONSECUTIVE")
    with pytest.raises(InvalidArgument) as flat:
        valid_tiers([TIERS[0], replace(TIERS[1], growth_threshold_cents=0)])
    assert refusal(flat) == ("tiers[1].growth_threshold_cents",
                             "TIER_THRESHOLDS_NOT_INCREASING")


@pytest.mark.parametrize(("tier", "field"), [
    (replace(TIERS[0], name=" "), "tiers[0].name"),
    (replace(TIERS[0], name="x" * 41), "tiers[0].name"),
    (replace(TIERS[0], growth_threshold_cents=-1), "tiers[0].growth_threshold_cents"),
    (replace(TIERS[0], points_multiplier_percent=99), "tiers[0].points_multiplier_percent"),
    (replace(TIERS[0], points_multiplier_percent=1001), "tiers[0].points_multiplier_percent"),
    (replace(TIERS[0], privileges=("a", "a")), "tiers[0].privileges"),
])
def test_a_bad_tier_is_refused_naming_its_field(tier: Tier, field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        valid_tiers([tier])
    assert error.value.field == field


@pytest.mark.parametrize(("change", "field"), [
    ({"terms_version": "has space"}, "terms_version"),
    ({"terms_url": "u" * 501}, "terms_url"),
    ({"consent_purposes": ("Upper",)}, "consent_purposes"),
    ({"growth_window_days": 0}, "growth_window_days"),
    ({"retention_days": -1}, "retention_days"),
    ({"dormant_after_days": 3651}, "dormant_after_days"),
])
def test_a_bad_program_is_refused_naming_its_field(change: dict[str, object],
                                                   field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        valid_program(replace(PROGRAM, **change))  # type: ignore[arg-type]
    assert error.value.field == field


def test_a_valid_program_comes_back_cleaned() -> None:
    cleaned = valid_program(replace(PROGRAM, terms_url="  https://acme.example/terms ",
                                    consent_purposes=(" profile ",)))
    assert cleaned.terms_url == "https://acme.example/terms"
    assert cleaned.consent_purposes == ("profile",)


def test_consent_needs_the_current_terms_and_the_programs_purposes() -> None:
    assert check_consent(PROGRAM, "2024-06", ["profile"]) == ("profile",)
    with pytest.raises(FailedPrecondition) as outdated:
        check_consent(PROGRAM, "2023-01", ["profile"])
    assert outdated.value.reason == "TERMS_VERSION_MISMATCH"
    assert outdated.value.metadata == {"terms_version": "2024-06"}
    with pytest.raises(InvalidArgument) as unknown:
        check_consent(PROGRAM, "2024-06", ["profile", "telemarketing"])
    assert refusal(unknown) == ("purposes", "PURPOSE_UNKNOWN")


def test_dates_are_optional_past_and_after_1900() -> None:
    today = date(2026, 3, 1)
    assert parse_date(" ", "birthday", today) is None
    assert parse_date("2026-03-01", "birthday", today) == today
    for bad in ("2026-03-02", "1899-12-31", "01/02/1990", "1990-02-30"):
        with pytest.raises(InvalidArgument) as error:
            parse_date(bad, "baby_birthday", today)
        assert error.value.field == "baby_birthday"


# --- inputs ------------------------------------------------------------------------------


def test_account_ids_are_bounded_to_a_safe_alphabet() -> None:
    assert valid_account(" u-1.a@b:c_2 ") == "u-1.a@b:c_2"
    assert valid_account("a" * 128) == "a" * 128
    for bad in ("a" * 129, "a b", "a/b", "账户"):
        with pytest.raises(InvalidArgument) as error:
            valid_account(bad, "followers[3].account_id")
        assert error.value.field == "followers[3].account_id"


def test_identifiers_are_required_and_bounded() -> None:
    assert valid_identifier(" ev_1 ", "event_id") == "ev_1"
    with pytest.raises(InvalidArgument) as long:
        valid_identifier("e" * (MAX_ID_LENGTH + 1), "event_id")
    assert long.value.field == "event_id"
    with pytest.raises(InvalidArgument) as blank:
        valid_identifier("", "order_id")
    assert blank.value.field == "order_id"


def test_channel_is_lower_cased_defaulted_and_bounded() -> None:
    assert valid_channel(" Live_Stream ", "storefront") == "live_stream"
    assert valid_channel("", "storefront") == "storefront"
    for bad in ("a" * 41, "we chat", "渠道"):
        with pytest.raises(InvalidArgument) as error:
            valid_channel(bad, "storefront")
        assert error.value.field == "channel"


def test_invite_code_is_trimmed_optional_and_bounded() -> None:
    assert valid_invite_code("  INV-1_a ") == "INV-1_a"
    assert valid_invite_code("") == ""
    for bad in ("x" * 65, "a b", "a;drop"):
        with pytest.raises(InvalidArgument) as error:
            valid_invite_code(bad)
        assert error.value.field == "invite_code"


def test_a_fact_must_say_when_it_happened() -> None:
    assert occurred_at(NOW, "paid_time") == NOW
    with pytest.raises(InvalidArgument) as error:
        occurred_at(None, "paid_time")
    assert refusal(error) == ("paid_time", "FIELD_REQUIRED")
