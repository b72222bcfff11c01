"""asyncpg repositories for the engagement schema."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from libs.db import Connection, Record
from services.engagement.domain.activities import Activity, ActivityState, Owner, OwnerKind
from services.engagement.domain.activity_kinds import ActivityKind
from services.engagement.domain.draws import Draw, DrawSaga
from services.engagement.domain.grants import Grant
from services.engagement.domain.invites import AcceptedInvite
from services.engagement.domain.sign_ins import SignIn
from services.engagement.domain.spec_form import spec_dict
from services.engagement.domain.spec_parsing import parse_spec

# Live and closed follow the clock; the stored state records the owner's decisions.
_EFFECTIVE_STATE = ("CASE WHEN state = 'draft' THEN 'draft' "
                    "WHEN state = 'closed' OR ends_at <= $now THEN 'closed' "
                    "WHEN starts_at <= $now THEN 'live' ELSE 'scheduled' END")


def _activity(row: Record) -> Activity:
    spec_data = row["spec"]
    if isinstance(spec_data, str):
        spec_data = json.loads(spec_data)
    return Activity(
        activity_id=row["activity_id"], brand_id=row["brand_id"],
        kind=ActivityKind(row["kind"]), state=ActivityState(row["state"]), title=row["title"],
        starts_at=row["starts_at"], ends_at=row["ends_at"], created_at=row["created_at"],
        owner=Owner(OwnerKind(row["owner_kind"]), row["owner_id"]),
        spec=parse_spec(spec_data) if spec_data else None, version=row["version"],
        updated_at=row["updated_at"], closed_at=row["closed_at"])


class ActivityRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add(self, activity: Activity) -> None:
        spec = activity.definition
        await self._conn.execute(
            "INSERT INTO activities (activity_id, brand_id, kind, state, title, starts_at, "
            "ends_at, created_at, owner_kind, owner_id, spec, version, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, 1, $8)",
            activity.activity_id, activity.brand_id, activity.kind.value, activity.state.value,
            spec.title, spec.starts_at, spec.ends_at, activity.created_at,
            activity.owner.kind.value, activity.owner.owner_id, json.dumps(spec_dict(spec)))

    async def get(self, brand_id: str, activity_id: str, *,
                  for_update: bool = False) -> Activity | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM activities WHERE brand_id = $1 AND activity_id = $2"
            + (" FOR UPDATE" if for_update else ""), brand_id, activity_id)
        return _activity(row) if row else None

    async def save(self, activity: Activity) -> None:
        spec = activity.definition
        await self._conn.execute(
            "UPDATE activities SET state = $3, title = $4, starts_at = $5, ends_at = $6, "
            "spec = $7::jsonb, version = $8, updated_at = $9, closed_at = $10 "
            "WHERE brand_id = $1 AND activity_id = $2",
            activity.brand_id, activity.activity_id, activity.state.value, spec.title,
            spec.starts_at, spec.ends_at, json.dumps(spec_dict(spec)), activity.version,
            activity.updated_at, activity.closed_at)

    async def page(self, brand_id: str, limit: int, after: tuple[datetime, str] | None, *,
                   now: datetime | None = None, state: ActivityState | None = None,
                   kind: ActivityKind | None = None, window_start: datetime | None = None,
                   window_end: datetime | None = None) -> list[Activity]:
        """Newest first, keyset-paged on (created_at, activity_id), optionally filtered."""
        effective = _EFFECTIVE_STATE.replace("$now", "$5::timestamptz")
        rows = await self._conn.fetch(
            "SELECT * FROM activities WHERE brand_id = $1 "
            "AND ($2::timestamptz IS NULL OR (created_at, activity_id) < ($2, $3)) "
            f"AND ($6::text IS NULL OR ({effective}) = $6) "
            "AND ($7::text IS NULL OR kind = $7) "
            "AND ($8::timestamptz IS NULL OR ends_at > $8) "
            "AND ($9::timestamptz IS NULL OR starts_at < $9) "
            "ORDER BY created_at DESC, activity_id DESC LIMIT $4",
            brand_id, after[0] if after else None, after[1] if after else "", limit,
            now, state.value if state else None, kind.value if kind else None,
            window_start, window_end,
        )
        return [_activity(r) for r in rows]


def _sign_in(row: Record) -> SignIn:
    return SignIn(row["local_date"], row["streak_days"], row["make_up"], row["cost_points"],
                  row["signed_at"], list(row["grant_ids"]))


def _grant(row: Record) -> Grant:
    return Grant(row["grant_id"], row["brand_id"], row["account_id"], row["points"],
                 row["coupon_template_id"], row["reason_code"], row["state"],
                 row["attempts"], row["points_entry_id"], row["coupon_id"],
                 row["last_error"], row["refund_entry_id"], row["refunded_entry_id"],
                 row["updated_at"])


# A draw saga's states with a step left to run.
_UNFINISHED_SAGA = "'started', 'spent', 'recorded', 'compensating'"


def _saga(row: Record) -> DrawSaga:
    return DrawSaga(row["saga_id"], row["brand_id"], row["activity_id"], row["account_id"],
                    row["request_id"], row["local_date"], row["cost_points"], row["state"],
                    row["spend_entry_id"], row["failure_reason"], row["created_at"],
                    row["attempts"])


def _draw(row: Record) -> Draw:
    return Draw(row["draw_id"], row["brand_id"], row["activity_id"], row["account_id"],
                row["local_date"], row["picked_prize_id"], row["won_prize_id"],
                row["random_value"], row["total_weight"], row["weights"],
                row["cost_points"], row["grant_id"], row["drawn_at"])


class ParticipationRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def lock(self, *parts: str) -> None:
        """Serialise one member's participation in one activity until commit."""
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                                 "engagement:" + ":".join(parts))

    # --- sign-in ---
    async def sign_in_on(self, activity_id: str, account_id: str, day: date) -> SignIn | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM sign_ins WHERE activity_id = $1 AND account_id = $2 "
            "AND local_date = $3", activity_id, account_id, day)
        return _sign_in(row) if row else None

    async def sign_ins_on(self, activity_id: str, account_id: str,
                          days: list[date]) -> dict[date, SignIn]:
        """The member's sign-ins on the given days (one round trip for several days)."""
        rows = await self._conn.fetch(
            "SELECT * FROM sign_ins WHERE activity_id = $1 AND account_id = $2 "
            "AND local_date = ANY($3::date[])", activity_id, account_id, days)
        return {r["local_date"]: _sign_in(r) for r in rows}

    async def add_sign_in_with_grant(self, brand_id: str, activity_id: str, account_id: str,
                                     day: date, streak: int, make_up: bool, cost: int,
                                     now: datetime, grant: tuple[str, int, str, str]) -> bool:
        """add_grant and add_sign_in in one statement: (grant_id, points,
        coupon_template_id, reason_code) is owed with the sign-in it rewards."""
        grant_id, points, coupon_template_id, reason_code = grant
        added = await self._conn.fetchval(
            "WITH g AS (INSERT INTO reward_grants (grant_id, brand_id, account_id, points, "
            "coupon_template_id, reason_code) VALUES ($10, $1, $3, $11, $12, $13) "
            "ON CONFLICT DO NOTHING) "
            "INSERT INTO sign_ins (brand_id, activity_id, account_id, local_date, streak_days, "
            "make_up, cost_points, signed_at, grant_ids) VALUES ($1, $2, $3, $4, $5, $6, $7, "
            "$8, $9) ON CONFLICT DO NOTHING RETURNING true",
            brand_id, activity_id, account_id, day, streak, make_up, cost, now, [grant_id],
            grant_id, points, coupon_template_id, reason_code)
        return bool(added)

    async def add_sign_in(self, brand_id: str, activity_id: str, account_id: str, day: date,
                          streak: int, make_up: bool, cost: int, now: datetime,
                          grant_ids: list[str]) -> bool:
        added = await self._conn.fetchval(
            "INSERT INTO sign_ins (brand_id, activity_id, account_id, local_date, streak_days, "
            "make_up, cost_points, signed_at, grant_ids) VALUES ($1, $2, $3, $4, $5, $6, $7, "
            "$8, $9) ON CONFLICT DO NOTHING RETURNING true",
            brand_id, activity_id, account_id, day, streak, make_up, cost, now, grant_ids)
        return bool(added)

    async def sign_ins_after(self, activity_id: str, account_id: str, day: date) -> list[date]:
        rows = await self._conn.fetch(
            "SELECT local_date FROM sign_ins WHERE activity_id = $1 AND account_id = $2 "
            "AND local_date > $3 ORDER BY local_date", activity_id, account_id, day)
        return [r["local_date"] for r in rows]

    async def set_streak(self, activity_id: str, account_id: str, day: date,
                         streak: int) -> None:
        await self._conn.execute(
            "UPDATE sign_ins SET streak_days = $4 WHERE activity_id = $1 AND account_id = $2 "
            "AND local_date = $3", activity_id, account_id, day, streak)

    async def recent_sign_ins(self, activity_id: str, account_id: str,
                              limit: int) -> list[SignIn]:
        rows = await self._conn.fetch(
            "SELECT * FROM sign_ins WHERE activity_id = $1 AND account_id = $2 "
            "ORDER BY local_date DESC LIMIT $3", activity_id, account_id, limit)
        return [_sign_in(r) for r in rows]

    # --- reward grants ---
    async def add_grant(self, grant_id: str, brand_id: str, account_id: str, points: int,
                        coupon_template_id: str, reason_code: str,
                        refund_entry_id: str = "") -> None:
        await self._conn.execute(
            "INSERT INTO reward_grants (grant_id, brand_id, account_id, points, "
            "coupon_template_id, reason_code, refund_entry_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            grant_id, brand_id, account_id, points, coupon_template_id, reason_code,
            refund_entry_id)

    async def grants(self, grant_ids: list[str]) -> list[Grant]:
        rows = await self._conn.fetch(
            "SELECT * FROM reward_grants WHERE grant_id = ANY($1::text[])", grant_ids)
        by_id = {r["grant_id"]: _grant(r) for r in rows}
        return [by_id[g] for g in grant_ids if g in by_id]

    async def claim_grant(self, grant_id: str, lease_seconds: float) -> Grant | None:
        """Take the grant's next step (deliver it, or refund it when compensating) for
        `lease_seconds`: the row as claimed, or None when it has no step left or another
        worker holds it. The claim is one compare-and-set, so exactly one worker runs a step;
        the step's end (finish_grant, retry_grant_later) hands the grant on."""
        row = await self._conn.fetchrow(
            "UPDATE reward_grants SET next_attempt_at = now() + make_interval(secs => $2) "
            "WHERE grant_id = $1 AND state IN ('pending', 'compensating') "
            "AND next_attempt_at <= now() RETURNING *", grant_id, lease_seconds)
        return _grant(row) if row else None

    async def claim_due_grants(self, limit: int, lease_seconds: float,
                               fresh_grace_seconds: float) -> list[Grant]:
        """Claim (as claim_grant) up to `limit` grants to deliver or to refund whose retry
        time (the database's clock) has come, skipping rows another worker is claiming.
        A grant never tried is left to the request that owed it for `fresh_grace_seconds`
        (its answer tells the outcome); a lease that ran out is taken over."""
        rows = await self._conn.fetch(
            "UPDATE reward_grants g SET next_attempt_at = now() + make_interval(secs => $2) "
            "FROM (SELECT grant_id FROM reward_grants "
            "      WHERE state IN ('pending', 'compensating') AND next_attempt_at <= now() "
            "      AND (attempts > 0 OR created_at < now() - make_interval(secs => $3)) "
            "      ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due "
            "WHERE g.grant_id = due.grant_id RETURNING g.*",
            limit, lease_seconds, fresh_grace_seconds)
        return [_grant(r) for r in rows]

    async def finish_grant(self, grant_id: str, state: str, points_entry_id: str,
                           coupon_id: str, error: str, *, from_state: str = "pending",
                           hold_seconds: float = 0.0) -> bool:
        """Move a grant on from `from_state` (False when another runner moved it first).
        `hold_seconds`: the mover keeps its claim that long to run the next step itself
        (a refund right after the delivery failed)."""
        moved = await self._conn.fetchval(
            "UPDATE reward_grants SET state = $2, points_entry_id = $3, coupon_id = $4, "
            "last_error = $5, attempts = attempts + 1, updated_at = now(), "
            "next_attempt_at = now() + make_interval(secs => $7) "
            "WHERE grant_id = $1 AND state = $6 RETURNING true",
            grant_id, state, points_entry_id, coupon_id, error, from_state, hold_seconds)
        return bool(moved)

    async def retry_grant_later(self, grant_id: str, points_entry_id: str, error: str,
                                backoff_seconds: float, *, state: str = "pending") -> None:
        await self._conn.execute(
            "UPDATE reward_grants SET attempts = attempts + 1, last_error = $2, "
            "points_entry_id = $3, updated_at = now(), "
            "next_attempt_at = now() + make_interval(secs => $4) "
            "WHERE grant_id = $1 AND state = $5",
            grant_id, error, points_entry_id, backoff_seconds, state)

    async def refunded_grant(self, grant_id: str, refunded_entry_id: str
                             ) -> tuple[str, str, str] | None:
        """compensating -> failed with the refund recorded, and the prize the grant paid
        for (a lottery draw's) given back to the stock; returns (brand, activity, prize)
        when a prize went back, None otherwise (also when another runner finished first)."""
        moved = await self._conn.fetchval(
            "UPDATE reward_grants SET state = 'failed', refunded_entry_id = $2, "
            "updated_at = now() WHERE grant_id = $1 AND state = 'compensating' "
            "RETURNING true", grant_id, refunded_entry_id)
        if not moved:
            return None
        row = await self._conn.fetchrow(
            "UPDATE lottery_prizes p SET won = p.won - 1 FROM lottery_draws d "
            "WHERE d.draw_id = $1 AND p.activity_id = d.activity_id "
            "AND p.prize_id = d.won_prize_id AND p.won > 0 "
            "RETURNING p.brand_id, p.activity_id, p.prize_id", grant_id)
        return (row["brand_id"], row["activity_id"], row["prize_id"]) if row else None

    async def failed_grants(self, brand_id: str, limit: int,
                            after: tuple[datetime, str] | None) -> list[Grant]:
        """Grants that ended undelivered (the dead letters), newest first."""
        rows = await self._conn.fetch(
            "SELECT * FROM reward_grants WHERE brand_id = $1 AND state = 'failed' "
            "AND ($3::timestamptz IS NULL OR (updated_at, grant_id) < ($3, $4)) "
            "ORDER BY updated_at DESC, grant_id DESC LIMIT $2",
            brand_id, limit, after[0] if after else None, after[1] if after else "")
        return [_grant(r) for r in rows]

    async def member_grants(self, brand_id: str, account_id: str, limit: int,
                            after: tuple[datetime, str] | None
                            ) -> list[tuple[Grant, datetime]]:
        """One member's reward grants in every state, newest first, with when each was
        owed (the page position)."""
        rows = await self._conn.fetch(
            "SELECT * FROM reward_grants WHERE brand_id = $1 AND account_id = $2 "
            "AND ($4::timestamptz IS NULL OR (created_at, grant_id) < ($4, $5)) "
            "ORDER BY created_at DESC, grant_id DESC LIMIT $3",
            brand_id, account_id, limit, after[0] if after else None,
            after[1] if after else "")
        return [(_grant(r), r["created_at"]) for r in rows]

    # --- lottery ---
    async def add_prizes(self, brand_id: str, activity_id: str,
                         stocks: list[tuple[str, int]]) -> None:
        await self._conn.executemany(
            "INSERT INTO lottery_prizes (activity_id, prize_id, brand_id, position, stock) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (activity_id, prize_id) "
            "DO UPDATE SET stock = EXCLUDED.stock, position = EXCLUDED.position",
            [(activity_id, prize_id, brand_id, index, stock)
             for index, (prize_id, stock) in enumerate(stocks)])

    async def prize_counts(self, activity_id: str) -> dict[str, tuple[int, int]]:
        """prize_id -> (stock, won) as recorded in PostgreSQL."""
        rows = await self._conn.fetch(
            "SELECT prize_id, stock, won FROM lottery_prizes WHERE activity_id = $1",
            activity_id)
        return {r["prize_id"]: (r["stock"], r["won"]) for r in rows}

    async def take_prize(self, activity_id: str, prize_id: str) -> int | None:
        """Record one win if stock remains (the final say on stock): the stock left after it,
        or None when there was none."""
        left: int | None = await self._conn.fetchval(
            "UPDATE lottery_prizes SET won = won + 1 WHERE activity_id = $1 AND prize_id = $2 "
            "AND won < stock RETURNING stock - won", activity_id, prize_id)
        return left

    async def draw_counts(self, activity_id: str, account_id: str,
                          day: date) -> tuple[int, int]:
        row = await self._conn.fetchrow(
            "SELECT count(*) FILTER (WHERE local_date = $3) AS today, count(*) AS total "
            "FROM lottery_draws WHERE activity_id = $1 AND account_id = $2",
            activity_id, account_id, day)
        assert row is not None
        return int(row["today"]), int(row["total"])

    async def add_draw(self, draw: Draw) -> bool:
        added = await self._conn.fetchval(
            "INSERT INTO lottery_draws (draw_id, brand_id, activity_id, account_id, local_date, "
            "picked_prize_id, won_prize_id, random_value, total_weight, weights, cost_points, "
            "grant_id, drawn_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
            "$13) ON CONFLICT DO NOTHING RETURNING true",
            draw.draw_id, draw.brand_id, draw.activity_id, draw.account_id, draw.local_date,
            draw.picked_prize_id, draw.won_prize_id, draw.random_value, draw.total_weight,
            draw.weights, draw.cost_points, draw.grant_id, draw.drawn_at)
        return bool(added)

    async def get_draw(self, brand_id: str, draw_id: str) -> Draw | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM lottery_draws WHERE brand_id = $1 AND draw_id = $2",
            brand_id, draw_id)
        return _draw(row) if row else None

    async def page_draws(self, brand_id: str, activity_id: str, account_id: str, limit: int,
                         after: tuple[datetime, str] | None) -> list[Draw]:
        rows = await self._conn.fetch(
            "SELECT * FROM lottery_draws WHERE brand_id = $1 AND activity_id = $2 "
            "AND ($3 = '' OR account_id = $3) "
            "AND ($4::timestamptz IS NULL OR (drawn_at, draw_id) < ($4, $5)) "
            "ORDER BY drawn_at DESC, draw_id DESC LIMIT $6",
            brand_id, activity_id, account_id, after[0] if after else None,
            after[1] if after else "", limit)
        return [_draw(r) for r in rows]

    async def count_draws(self, activity_id: str) -> int:
        return int(await self._conn.fetchval(
            "SELECT count(*) FROM lottery_draws WHERE activity_id = $1", activity_id))

    # --- sagas ---
    async def add_saga(self, saga: DrawSaga) -> bool:
        added = await self._conn.fetchval(
            "INSERT INTO draw_sagas (saga_id, brand_id, activity_id, account_id, request_id, "
            "local_date, cost_points, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT DO NOTHING RETURNING true",
            saga.saga_id, saga.brand_id, saga.activity_id, saga.account_id, saga.request_id,
            saga.local_date, saga.cost_points, saga.state)
        return bool(added)

    async def saga_by_request(self, activity_id: str, request_id: str) -> DrawSaga | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM draw_sagas WHERE activity_id = $1 AND request_id = $2",
            activity_id, request_id)
        return _saga(row) if row else None

    async def saga(self, saga_id: str, *, for_update: bool = False) -> DrawSaga | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM draw_sagas WHERE saga_id = $1" + (" FOR UPDATE" if for_update else ""),
            saga_id)
        return _saga(row) if row else None

    async def move_saga(self, saga_id: str, from_state: str, to_state: str, *,
                        spend_entry_id: str | None = None, failure_reason: str | None = None,
                        ) -> bool:
        moved = await self._conn.fetchval(
            "UPDATE draw_sagas SET state = $3, spend_entry_id = COALESCE($4, spend_entry_id), "
            "failure_reason = COALESCE($5, failure_reason), updated_at = now(), "
            # Each state's step counts its own attempts against its own bound.
            "attempts = CASE WHEN state = $3 THEN attempts ELSE 0 END "
            "WHERE saga_id = $1 AND state = $2 RETURNING true",
            saga_id, from_state, to_state, spend_entry_id, failure_reason)
        return bool(moved)

    async def complete_lost_draw(self, from_state: str, spend_entry_id: str | None,
                                 draw: Draw) -> bool:
        """Move the saga to completed and record its draw (won nothing, owes nothing) in one
        statement; False (nothing written) when the saga was not in from_state."""
        added = await self._conn.fetchval(
            "WITH moved AS (UPDATE draw_sagas SET state = 'completed', "
            "spend_entry_id = COALESCE($14, spend_entry_id), updated_at = now() "
            "WHERE saga_id = $1 AND state = $15 RETURNING saga_id) "
            "INSERT INTO lottery_draws (draw_id, brand_id, activity_id, account_id, local_date, "
            "picked_prize_id, won_prize_id, random_value, total_weight, weights, cost_points, "
            "grant_id, drawn_at) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 "
            "FROM moved ON CONFLICT DO NOTHING RETURNING true",
            draw.draw_id, draw.brand_id, draw.activity_id, draw.account_id, draw.local_date,
            draw.picked_prize_id, draw.won_prize_id, draw.random_value, draw.total_weight,
            draw.weights, draw.cost_points, draw.grant_id, draw.drawn_at, spend_entry_id,
            from_state)
        return bool(added)

    async def touch_saga(self, saga_id: str, error: str, backoff_seconds: float = 0.0) -> None:
        """Count a failed attempt and let the saga go (its claim ends); the recovery loop
        looks at it again once `backoff_seconds` and its grace period have passed (updated_at
        is moved ahead)."""
        await self._conn.execute(
            "UPDATE draw_sagas SET attempts = attempts + 1, failure_reason = $2, "
            "updated_at = now() + make_interval(secs => $3), claimed_until = NULL "
            "WHERE saga_id = $1",
            saga_id, error, backoff_seconds)

    async def dead_letter_draws(self, activity_id: str) -> list[tuple[str, str]]:
        """(saga_id, failure_reason) of draws stopped for good (their compensation failed)."""
        rows = await self._conn.fetch(
            "SELECT saga_id, failure_reason FROM draw_sagas WHERE activity_id = $1 "
            "AND state = 'dead_letter' ORDER BY updated_at DESC LIMIT 100", activity_id)
        return [(r["saga_id"], r["failure_reason"]) for r in rows]

    async def claim_saga(self, saga_id: str, lease_seconds: float) -> DrawSaga | None:
        """Take an unfinished saga's steps for `lease_seconds`: the saga as claimed, or None
        when it is finished or another runner holds it. One compare-and-set, so exactly one
        runner runs a step; the holder's failed attempt (touch_saga) lets it go."""
        row = await self._conn.fetchrow(
            "UPDATE draw_sagas SET claimed_until = now() + make_interval(secs => $2) "
            f"WHERE saga_id = $1 AND state IN ({_UNFINISHED_SAGA}) "
            "AND (claimed_until IS NULL OR claimed_until < now()) RETURNING *",
            saga_id, lease_seconds)
        return _saga(row) if row else None

    async def claim_stale_sagas(self, older_than_seconds: float, limit: int,
                                lease_seconds: float) -> list[DrawSaga]:
        """Claim (as claim_saga) up to `limit` unfinished sagas nobody holds and nobody moved
        for `older_than_seconds`, skipping rows another runner is claiming."""
        rows = await self._conn.fetch(
            "UPDATE draw_sagas s SET claimed_until = now() + make_interval(secs => $3) "
            "FROM (SELECT saga_id FROM draw_sagas "
            f"      WHERE state IN ({_UNFINISHED_SAGA}) "
            "      AND updated_at < now() - make_interval(secs => $1) "
            "      AND (claimed_until IS NULL OR claimed_until < now()) "
            "      ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED) stale "
            "WHERE s.saga_id = stale.saga_id RETURNING s.*",
            older_than_seconds, limit, lease_seconds)
        return [_saga(r) for r in rows]

    # --- koi ---
    async def add_koi(self, brand_id: str, activity_id: str, seed: bytes,
                      commitment: str) -> None:
        await self._conn.execute(
            "INSERT INTO koi_draws (activity_id, brand_id, seed, commitment) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            activity_id, brand_id, seed, commitment)

    async def koi(self, activity_id: str, *, for_update: bool = False) -> Record | None:
        return await self._conn.fetchrow(
            "SELECT *, (SELECT count(*) FROM koi_entries e WHERE e.activity_id = k.activity_id) "
            "AS entrants FROM koi_draws k WHERE activity_id = $1"
            + (" FOR UPDATE" if for_update else ""), activity_id)

    async def add_koi_entry(self, activity_id: str, account_id: str, now: datetime) -> bool:
        added = await self._conn.fetchval(
            "INSERT INTO koi_entries (activity_id, account_id, entered_at) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING RETURNING true", activity_id, account_id, now)
        return bool(added)

    async def koi_entrants(self, activity_id: str) -> list[str]:
        rows = await self._conn.fetch(
            "SELECT account_id FROM koi_entries WHERE activity_id = $1 ORDER BY account_id",
            activity_id)
        return [r["account_id"] for r in rows]

    async def reveal_koi(self, activity_id: str, winners: list[str], now: datetime) -> None:
        await self._conn.execute(
            "UPDATE koi_draws SET revealed_at = $2, winners = $3 WHERE activity_id = $1",
            activity_id, now, winners)

    async def due_koi(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        rows = await self._conn.fetch(
            "SELECT k.brand_id, k.activity_id FROM koi_draws k JOIN activities a "
            "ON a.activity_id = k.activity_id WHERE k.revealed_at IS NULL "
            "AND a.state <> 'draft' AND (a.state = 'closed' OR a.ends_at <= $1) LIMIT $2",
            now, limit)
        return [(r["brand_id"], r["activity_id"]) for r in rows]

    # --- votes ---
    async def votes_on(self, activity_id: str, account_id: str, day: date) -> int:
        return int(await self._conn.fetchval(
            "SELECT count(*) FROM votes WHERE activity_id = $1 AND account_id = $2 "
            "AND local_date = $3", activity_id, account_id, day))

    async def has_voted(self, activity_id: str, account_id: str) -> bool:
        return bool(await self._conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM votes WHERE activity_id = $1 AND account_id = $2)",
            activity_id, account_id))

    async def add_vote(self, brand_id: str, activity_id: str, account_id: str, day: date,
                       seq: int, option_id: str, now: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO votes (brand_id, activity_id, account_id, local_date, seq, option_id, "
            "voted_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            brand_id, activity_id, account_id, day, seq, option_id, now)
        await self._conn.execute(
            "INSERT INTO vote_tallies (activity_id, option_id, votes) VALUES ($1, $2, 1) "
            "ON CONFLICT (activity_id, option_id) DO UPDATE SET votes = vote_tallies.votes + 1",
            activity_id, option_id)

    async def tallies(self, activity_id: str) -> dict[str, int]:
        rows = await self._conn.fetch(
            "SELECT option_id, votes FROM vote_tallies WHERE activity_id = $1", activity_id)
        return {r["option_id"]: int(r["votes"]) for r in rows}

    # --- quiz ---
    async def quiz_attempts(self, activity_id: str, account_id: str) -> tuple[int, int]:
        """(attempts so far, best score)."""
        row = await self._conn.fetchrow(
            "SELECT count(*) AS attempts, COALESCE(max(correct_answers), 0) AS best "
            "FROM quiz_attempts WHERE activity_id = $1 AND account_id = $2",
            activity_id, account_id)
        assert row is not None
        return int(row["attempts"]), int(row["best"])

    async def add_quiz_attempt(self, brand_id: str, activity_id: str, account_id: str,
                               attempt: int, answers: Any, correct: int, points: int,
                               grant_id: str | None, now: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO quiz_attempts (brand_id, activity_id, account_id, attempt, answers, "
            "correct_answers, points_awarded, grant_id, submitted_at) "
            "VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9)",
            brand_id, activity_id, account_id, attempt, json.dumps(answers), correct, points,
            grant_id, now)

    # --- invites ---
    async def invite_code(self, activity_id: str, account_id: str) -> str | None:
        value = await self._conn.fetchval(
            "SELECT code FROM invite_codes WHERE activity_id = $1 AND account_id = $2",
            activity_id, account_id)
        return str(value) if value else None

    async def add_invite_code(self, code: str, brand_id: str, activity_id: str,
                              account_id: str) -> bool:
        added = await self._conn.fetchval(
            "INSERT INTO invite_codes (code, brand_id, activity_id, account_id) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
            code, brand_id, activity_id, account_id)
        return bool(added)

    async def code_owner(self, brand_id: str, code: str) -> tuple[str, str] | None:
        row = await self._conn.fetchrow(
            "SELECT activity_id, account_id FROM invite_codes WHERE brand_id = $1 AND code = $2",
            brand_id, code)
        return (row["activity_id"], row["account_id"]) if row else None

    async def add_invite(self, brand_id: str, invitee: str, activity_id: str, inviter: str,
                         code: str, inviter_rewarded: bool, now: datetime) -> bool:
        added = await self._conn.fetchval(
            "INSERT INTO invites (brand_id, invitee_account_id, activity_id, inviter_account_id,"
            " code, inviter_rewarded, accepted_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT DO NOTHING RETURNING true",
            brand_id, invitee, activity_id, inviter, code, inviter_rewarded, now)
        return bool(added)

    async def invited_before(self, brand_id: str, invitee: str) -> bool:
        return bool(await self._conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM invites WHERE brand_id = $1 "
            "AND invitee_account_id = $2)", brand_id, invitee))

    async def rewarded_invites(self, activity_id: str, inviter: str) -> int:
        return int(await self._conn.fetchval(
            "SELECT count(*) FROM invites WHERE activity_id = $1 AND inviter_account_id = $2 "
            "AND inviter_rewarded", activity_id, inviter))

    async def page_invites(self, activity_id: str, inviter: str, limit: int,
                           after: tuple[datetime, str] | None) -> list[AcceptedInvite]:
        rows = await self._conn.fetch(
            "SELECT invitee_account_id, inviter_rewarded, accepted_at FROM invites "
            "WHERE activity_id = $1 AND inviter_account_id = $2 "
            "AND ($3::timestamptz IS NULL OR (accepted_at, invitee_account_id) < ($3, $4)) "
            "ORDER BY accepted_at DESC, invitee_account_id DESC LIMIT $5",
            activity_id, inviter, after[0] if after else None, after[1] if after else "",
            limit)
        return [AcceptedInvite(r["invitee_account_id"], r["inviter_rewarded"], r["accepted_at"])
                for r in rows]
