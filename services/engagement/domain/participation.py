"""Rules of taking part: sign-in days and streaks, lottery picks, koi draws, votes, quizzes,
invites. Pure functions; the randomness is passed in so that every outcome can be audited."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from libs.errors import FailedPrecondition, InvalidArgument
from services.engagement.domain.activity_kinds import (
    LotteryConfig,
    QuizConfig,
    SignInConfig,
    VoteConfig,
)

DEFAULT_TIME_ZONE = "Asia/Shanghai"


def local_date(now: datetime, time_zone: str) -> date:
    """The brand's calendar day at a moment ("daily" means this)."""
    return now.astimezone(ZoneInfo(time_zone or DEFAULT_TIME_ZONE)).date()


def parse_local_date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidArgument(f"{field} must be a date as YYYY-MM-DD", field=field) from None


# --- sign-in ---------------------------------------------------------------------------------


def next_streak(previous_day_streak: int | None) -> int:
    """A sign-in continues yesterday's streak, or starts a new one."""
    return (previous_day_streak or 0) + 1


def check_make_up(config: SignInConfig, day: date, today: date) -> None:
    if not config.make_up_allowed:
        raise FailedPrecondition("this sign-in activity does not allow make-up sign-ins",
                                 reason="MAKE_UP_NOT_ALLOWED")
    if day >= today:
        raise InvalidArgument("local_date of a make-up sign-in must be a past day",
                              field="local_date", reason="MAKE_UP_NOT_PAST")
    if (today - day).days > config.make_up_window_days:
        raise InvalidArgument(
            f"local_date is more than {config.make_up_window_days} day(s) back",
            field="local_date", reason="MAKE_UP_TOO_OLD",
            metadata={"window_days": str(config.make_up_window_days)})


def restreak(days: Sequence[date], start: date, start_streak: int) -> list[tuple[date, int]]:
    """Streaks of the consecutive signed days after `start` (sorted), following start_streak."""
    out: list[tuple[date, int]] = []
    expected, streak = start + timedelta(days=1), start_streak
    for day in days:
        if day != expected:
            break
        streak += 1
        out.append((day, streak))
        expected = day + timedelta(days=1)
    return out


# --- lottery ---------------------------------------------------------------------------------


def weights_of(config: LotteryConfig) -> list[tuple[str, int]]:
    return [(p.prize_id, p.weight) for p in config.prizes]


def weights_text(weights: Sequence[tuple[str, int]]) -> str:
    return ",".join(f"{prize_id}:{weight}" for prize_id, weight in weights)


def parse_weights(text: str) -> list[tuple[str, int]]:
    pairs = []
    for part in text.split(","):
        prize_id, _, weight = part.rpartition(":")
        pairs.append((prize_id, int(weight)))
    return pairs


def pick(weights: Sequence[tuple[str, int]], random_value: int) -> str:
    """The prize a uniform integer in [0, total weight) selects (cumulative weights, in order).

    The Redis script implements the same rule; this one audits recorded draws."""
    total = sum(weight for _, weight in weights)
    if not 0 <= random_value < total:
        raise ValueError(f"random value {random_value} outside [0, {total})")
    cumulative = 0
    for prize_id, weight in weights:
        cumulative += weight
        if random_value < cumulative:
            return prize_id
    raise AssertionError("unreachable: the value is below the total weight")


def new_random(total_weight: int) -> int:
    return secrets.randbelow(total_weight)


def check_draw_limits(config: LotteryConfig, today_count: int, total_count: int) -> None:
    if config.daily_limit and today_count >= config.daily_limit:
        raise FailedPrecondition("the member has used today's draws", reason="DAILY_LIMIT_REACHED",
                                 metadata={"daily_limit": str(config.daily_limit)})
    if config.total_limit and total_count >= config.total_limit:
        raise FailedPrecondition("the member has used all draws of this lottery",
                                 reason="TOTAL_LIMIT_REACHED",
                                 metadata={"total_limit": str(config.total_limit)})


# --- koi draw --------------------------------------------------------------------------------


def new_seed() -> bytes:
    return secrets.token_bytes(32)


def commitment(seed: bytes) -> str:
    return hashlib.sha256(seed).hexdigest()


def koi_winners(seed: bytes, entrants: Sequence[str], count: int) -> list[str]:
    """Winners: the `count` entrants with the lowest HMAC-SHA256(seed, account id), over the
    sorted, de-duplicated entrant list. Anyone with the seed and the list gets the same."""
    ranked = sorted(sorted(set(entrants)),
                    key=lambda entrant: hmac.new(seed, entrant.encode(), hashlib.sha256).digest())
    return ranked[:max(count, 0)]


@dataclass(frozen=True)
class KoiVerdict:
    valid: bool
    reason: str
    expected_winners: list[str]


def verify_koi(seed_hex: str, claimed_commitment: str, entrants: Sequence[str], count: int,
               winners: Sequence[str]) -> KoiVerdict:
    try:
        seed = bytes.fromhex(seed_hex)
    except ValueError:
        raise InvalidArgument("seed must be hex", field="seed") from None
    if count < 0:
        raise InvalidArgument("winner_count must not be negative", field="winner_count")
    expected = koi_winners(seed, entrants, count)
    if commitment(seed) != claimed_commitment.strip().lower():
        return KoiVerdict(False, "COMMITMENT_MISMATCH", expected)
    if list(winners) != expected:
        return KoiVerdict(False, "WINNERS_MISMATCH", expected)
    return KoiVerdict(True, "", expected)


# --- vote ------------------------------------------------------------------------------------


def check_vote(config: VoteConfig, option_id: str, votes_today: int) -> None:
    if option_id not in {o.option_id for o in config.options}:
        raise InvalidArgument(f"option_id {option_id!r} is not an option of this vote",
                              field="option_id", reason="UNKNOWN_OPTION")
    if votes_today >= config.votes_per_day:
        raise FailedPrecondition("the member has used today's votes",
                                 reason="DAILY_VOTES_USED",
                                 metadata={"votes_per_day": str(config.votes_per_day)})


# --- quiz ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionGrade:
    question_id: str
    correct: bool
    correct_option_ids: list[str]


def grade_quiz(config: QuizConfig,
               answers: Sequence[tuple[str, Sequence[str]]]) -> list[QuestionGrade]:
    """Grade answers: a question is right when exactly the correct options are chosen;
    unanswered questions are wrong. Unknown or repeated questions are refused."""
    by_id = {q.question_id: q for q in config.questions}
    chosen: dict[str, frozenset[str]] = {}
    for index, (question_id, option_ids) in enumerate(answers):
        question = by_id.get(question_id)
        if question is None:
            raise InvalidArgument(f"answers[{index}].question_id {question_id!r} is not in "
                                  "this quiz", field=f"answers[{index}].question_id",
                                  reason="UNKNOWN_QUESTION")
        if question_id in chosen:
            raise InvalidArgument(f"answers[{index}] answers {question_id!r} twice",
                                  field=f"answers[{index}].question_id",
                                  reason="DUPLICATE_ANSWER")
        known = {o.option_id for o in question.options}
        for o_index, option in enumerate(option_ids):
            if option not in known:
                raise InvalidArgument(f"answers[{index}].option_ids[{o_index}] is not an "
                                      "option of the question",
                                      field=f"answers[{index}].option_ids[{o_index}]",
                                      reason="UNKNOWN_OPTION")
        chosen[question_id] = frozenset(option_ids)
    return [QuestionGrade(q.question_id, chosen.get(q.question_id) == q.correct_option_ids,
                          sorted(q.correct_option_ids)) for q in config.questions]


def revealed(config: QuizConfig, attempt: int,
             grades: Sequence[QuestionGrade]) -> list[QuestionGrade]:
    """The grades a member may see after this attempt: the correct options only once no
    attempt remains (otherwise the next attempt could copy them); right/wrong always."""
    if attempt >= config.max_attempts:
        return list(grades)
    return [QuestionGrade(g.question_id, g.correct, []) for g in grades]


def quiz_points(config: QuizConfig, correct: int, best_before: int) -> int:
    """Points for improving on the member's best score (so retries cannot farm points)."""
    return max(0, correct - best_before) * config.points_per_correct


def check_quiz_attempt(config: QuizConfig, attempts_so_far: int) -> None:
    if attempts_so_far >= config.max_attempts:
        raise FailedPrecondition("the member has used all attempts of this quiz",
                                 reason="QUIZ_ATTEMPTS_USED",
                                 metadata={"max_attempts": str(config.max_attempts)})


# --- invite ----------------------------------------------------------------------------------

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_invite_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))


@dataclass(frozen=True)
class InviteDecision:
    reward_inviter: bool
    reward_invitee: bool
    reason: str  # "" when accepted


def decide_invite(inviter: str, invitee: str, already_invited: bool, inviter_rewarded: int,
                  cap: int) -> InviteDecision:
    """No self-invites, no second reward for one invitee, inviters capped."""
    if inviter == invitee:
        return InviteDecision(False, False, "SELF_INVITE")
    if already_invited:
        return InviteDecision(False, False, "ALREADY_INVITED")
    return InviteDecision(not cap or inviter_rewarded < cap, True, "")


def stable_id(*parts: str) -> str:
    """A deterministic id (idempotency keys derived from what they protect)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
