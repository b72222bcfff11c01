"""gRPC servicer for engagement: protobuf <-> use cases, nothing else."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime

import grpc
from google.protobuf import json_format

from brandclub.engagement.v1 import engagement_service_pb2 as pb
from brandclub.engagement.v1 import engagement_service_pb2_grpc as pb_grpc
from libs.db import Connection, Database
from libs.errors import InvalidArgument, require
from libs.idempotency import IdempotentExecutor
from libs.paging import decode_page_token, encode_page_token, page_size
from libs.protoconv import from_timestamp, timestamp
from services.engagement.adapters.postgres import ParticipationRepository
from services.engagement.domain.activities import (
    Activity,
    ActivityKind,
    ActivitySpec,
    ActivityState,
    LotteryConfig,
    Owner,
    OwnerKind,
    QuizConfig,
    Reward,
    parse_spec,
    prize_dict,
    question_dict,
    spec_dict,
)
from services.engagement.domain.draws import Draw
from services.engagement.domain.grants import Grant
from services.engagement.domain.participation import (
    parse_local_date,
    parse_weights,
    pick,
    verify_koi,
)
from services.engagement.usecases import activities, koi, sign_in, social
from services.engagement.usecases.engagement import Engagement

_KINDS = {ActivityKind.SIGN_IN: pb.ACTIVITY_KIND_SIGN_IN,
          ActivityKind.LOTTERY: pb.ACTIVITY_KIND_LOTTERY,
          ActivityKind.VOTE: pb.ACTIVITY_KIND_VOTE, ActivityKind.QUIZ: pb.ACTIVITY_KIND_QUIZ,
          ActivityKind.INVITE: pb.ACTIVITY_KIND_INVITE}
_STATES = {ActivityState.DRAFT: pb.ACTIVITY_STATE_DRAFT,
           ActivityState.SCHEDULED: pb.ACTIVITY_STATE_SCHEDULED,
           ActivityState.LIVE: pb.ACTIVITY_STATE_LIVE,
           ActivityState.CLOSED: pb.ACTIVITY_STATE_CLOSED}
_OWNER_KINDS = {OwnerKind.BRAND: pb.OWNER_KIND_BRAND, OwnerKind.ISV_APP: pb.OWNER_KIND_ISV_APP}
# 'compensating': the reward failed for good and its cost is being given back.
_GRANT_STATES = {"pending": pb.GRANT_STATE_PENDING, "done": pb.GRANT_STATE_DONE,
                 "compensating": pb.GRANT_STATE_FAILED, "failed": pb.GRANT_STATE_FAILED}


def _spec(message: pb.ActivitySpec) -> ActivitySpec:
    return parse_spec(json_format.MessageToDict(message, preserving_proto_field_name=True))


def _owner(message: pb.Owner, field: str, *, optional: bool) -> Owner | None:
    if message.kind == pb.OWNER_KIND_UNSPECIFIED:
        if optional:
            return None
        return Owner(OwnerKind.BRAND, "")
    kind = next((k for k, v in _OWNER_KINDS.items() if v == message.kind), None)
    if kind is None:
        raise InvalidArgument(f"{field}.kind is not a known owner kind", field=f"{field}.kind")
    if kind is OwnerKind.ISV_APP:
        require(message.id, f"{field}.id")
    return Owner(kind, message.id.strip())


def _admin(view: int) -> bool:
    return view == pb.ACTIVITY_VIEW_ADMIN


def activity_pb(activity: Activity, now: datetime, *, with_answers: bool = False) -> pb.Activity:
    message = pb.Activity(
        activity_id=activity.activity_id, brand_id=activity.brand_id,
        kind=_KINDS[activity.kind], state=_STATES[activity.state_at(now)],
        title=activity.title, start_time=timestamp(activity.starts_at),
        end_time=timestamp(activity.ends_at), create_time=timestamp(activity.created_at),
        owner=pb.Owner(kind=_OWNER_KINDS[activity.owner.kind], id=activity.owner.owner_id),
        version=activity.version)
    if activity.updated_at:
        message.update_time.CopyFrom(timestamp(activity.updated_at))
    if activity.closed_at:
        message.close_time.CopyFrom(timestamp(activity.closed_at))
    if activity.spec is not None:
        json_format.ParseDict(spec_dict(activity.spec, with_answers=with_answers), message.spec)
    return message


def grant_pb(grant: Grant | None) -> pb.GrantedReward:
    if grant is None:
        return pb.GrantedReward()
    message = pb.GrantedReward(grant_id=grant.grant_id, points=grant.points,
                               coupon_template_id=grant.coupon_template_id,
                               state=_GRANT_STATES[grant.state], account_id=grant.account_id,
                               reason_code=grant.reason_code,
                               cost_refunded=bool(grant.refunded_entry_id))
    if grant.state in ("compensating", "failed"):
        message.failure_reason = grant.last_error
    if grant.updated_at is not None:
        message.update_time.CopyFrom(timestamp(grant.updated_at))
    return message


def _grants_pb(grants: Sequence[Grant]) -> list[pb.GrantedReward]:
    return [grant_pb(g) for g in grants]


def prize_pb(config: LotteryConfig, prize_id: str | None) -> pb.Prize | None:
    prize = config.prize(prize_id) if prize_id else None
    if prize is None:
        return None
    return json_format.ParseDict(prize_dict(prize), pb.Prize())


def draw_pb(draw: Draw, config: LotteryConfig, grant: Grant | None) -> pb.Draw:
    weights = parse_weights(draw.weights)
    try:
        verified = pick(weights, draw.random_value) == draw.picked_prize_id
    except ValueError:
        verified = False
    outcome = pb.DRAW_OUTCOME_WON if draw.won_prize_id else pb.DRAW_OUTCOME_LOST
    if draw.won_prize_id and grant is not None and grant.state in ("compensating", "failed"):
        outcome = pb.DRAW_OUTCOME_NOT_DELIVERED
    message = pb.Draw(
        draw_id=draw.draw_id, brand_id=draw.brand_id, activity_id=draw.activity_id,
        account_id=draw.account_id, outcome=outcome,
        picked_prize_id=draw.picked_prize_id, random_value=draw.random_value,
        total_weight=draw.total_weight, weights=draw.weights,
        local_date=draw.local_date.isoformat(), cost_points=draw.cost_points,
        draw_time=timestamp(draw.drawn_at), verified=verified)
    won = prize_pb(config, draw.won_prize_id)
    if won is not None:
        message.prize.CopyFrom(won)
    if grant is not None:
        message.grant.CopyFrom(grant_pb(grant))
    return message


def sign_in_record_pb(view: sign_in.SignInView) -> pb.SignInRecord:
    record = pb.SignInRecord(activity_id=view.activity_id, account_id=view.account_id,
                             local_date=view.local_date.isoformat(),
                             streak_days=view.streak_days, make_up=view.make_up,
                             sign_in_time=timestamp(view.signed_at),
                             cost_points=view.cost_points)
    if view.reward is not None:
        record.rewards.extend(pb.GrantedReward(
            grant_id=grant_id, points=view.reward.points,
            coupon_template_id=view.reward.coupon_template_id,
            state=pb.GRANT_STATE_PENDING) for grant_id in view.grant_ids)
    return record


def sign_in_view(record: pb.SignInRecord) -> sign_in.SignInView:
    """The view a stored SignInRecord was made from (sign_in_record_pb's inverse)."""
    first = record.rewards[0] if record.rewards else None
    reward = (Reward(points=first.points, coupon_template_id=first.coupon_template_id)
              if first is not None else None)
    return sign_in.SignInView(record.activity_id, record.account_id,
                              date.fromisoformat(record.local_date), record.streak_days,
                              record.make_up, from_timestamp(record.sign_in_time),
                              record.cost_points, [r.grant_id for r in record.rewards], reward)


def koi_pb(view: koi.KoiView) -> pb.KoiDraw:
    message = pb.KoiDraw(activity_id=view.activity_id, commitment=view.commitment,
                         entries_close_time=timestamp(view.entries_close),
                         entrant_count=view.entrant_count, winner_count=view.winner_count,
                         revealed=view.revealed_at is not None, seed=view.seed_hex,
                         entrant_account_ids=view.entrants, winner_account_ids=view.winners)
    if view.revealed_at is not None:
        message.reveal_time.CopyFrom(timestamp(view.revealed_at))
    return message


class EngagementServicer(pb_grpc.EngagementServiceServicer):
    def __init__(self, db: Database, engagement: Engagement) -> None:
        self._db = db
        self._engagement = engagement
        self._idempotent = IdempotentExecutor(db)

    def _now(self) -> datetime:
        return self._engagement.clock()

    async def _activity(self, brand_id: str, activity_id: str) -> Activity:
        async with self._db.connection() as conn:
            return await activities.get_activity(conn, brand_id, activity_id)

    # --- activities ---
    async def ListActivities(self, request: pb.ListActivitiesRequest,
                             context: grpc.aio.ServicerContext) -> pb.ListActivitiesResponse:
        state = next((k for k, v in _STATES.items() if v == request.state), None)
        kind = next((k for k, v in _KINDS.items() if v == request.kind), None)
        now = self._now()
        async with self._db.connection() as conn:
            page, token = await activities.list_activities(
                conn, request.brand_id, request.page_size, request.page_token, now=now,
                state=state, kind=kind,
                window_start=(from_timestamp(request.window_start_time)
                              if request.HasField("window_start_time") else None),
                window_end=(from_timestamp(request.window_end_time)
                            if request.HasField("window_end_time") else None))
        return pb.ListActivitiesResponse(
            activities=[activity_pb(a, now, with_answers=_admin(request.view)) for a in page],
            next_page_token=token)

    async def CreateActivity(self, request: pb.CreateActivityRequest,
                             context: grpc.aio.ServicerContext) -> pb.CreateActivityResponse:
        spec = _spec(request.spec)
        owner = _owner(request.owner, "owner", optional=False)
        assert owner is not None
        now = self._now()
        await self._engagement.check_references(request.brand_id, spec)

        async def work(conn: Connection) -> pb.CreateActivityResponse:
            activity = await activities.create_activity(conn, request.brand_id, owner, spec,
                                                      request.publish, now)
            return pb.CreateActivityResponse(activity=activity_pb(activity, now,
                                                                  with_answers=True))

        return await self._idempotent.run("CreateActivity", request,
                                          pb.CreateActivityResponse, work)

    async def UpdateActivity(self, request: pb.UpdateActivityRequest,
                             context: grpc.aio.ServicerContext) -> pb.UpdateActivityResponse:
        spec = _spec(request.spec)
        actor = _owner(request.actor, "actor", optional=True)
        now = self._now()
        await self._engagement.check_references(request.brand_id, spec)

        async def work(conn: Connection) -> pb.UpdateActivityResponse:
            activity = await activities.update_activity(conn, request.brand_id,
                                                      request.activity_id, actor, spec, now)
            return pb.UpdateActivityResponse(activity=activity_pb(activity, now,
                                                                  with_answers=True))

        response = await self._idempotent.run("UpdateActivity", request,
                                              pb.UpdateActivityResponse, work)
        self._engagement.forget(request.brand_id, request.activity_id)
        if response.activity.kind == pb.ACTIVITY_KIND_LOTTERY:
            # Stock may have moved: Redis takes PostgreSQL's numbers again.
            await self._engagement.reconcile(request.brand_id, request.activity_id)
        return response

    async def PublishActivity(self, request: pb.PublishActivityRequest,
                              context: grpc.aio.ServicerContext) -> pb.PublishActivityResponse:
        actor = _owner(request.actor, "actor", optional=True)
        now = self._now()

        async def work(conn: Connection) -> pb.PublishActivityResponse:
            activity = await activities.publish_activity(conn, request.brand_id,
                                                       request.activity_id, actor, now)
            return pb.PublishActivityResponse(activity=activity_pb(activity, now,
                                                                   with_answers=True))

        response = await self._idempotent.run("PublishActivity", request,
                                              pb.PublishActivityResponse, work)
        self._engagement.forget(request.brand_id, request.activity_id)
        return response

    async def CloseActivity(self, request: pb.CloseActivityRequest,
                            context: grpc.aio.ServicerContext) -> pb.CloseActivityResponse:
        actor = _owner(request.actor, "actor", optional=True)
        now = self._now()

        async def work(conn: Connection) -> pb.CloseActivityResponse:
            activity = await activities.close_activity(conn, request.brand_id,
                                                     request.activity_id, actor, now)
            return pb.CloseActivityResponse(activity=activity_pb(activity, now,
                                                                 with_answers=True))

        response = await self._idempotent.run("CloseActivity", request,
                                              pb.CloseActivityResponse, work)
        self._engagement.forget(request.brand_id, request.activity_id)
        return response

    async def GetActivity(self, request: pb.GetActivityRequest,
                          context: grpc.aio.ServicerContext) -> pb.GetActivityResponse:
        activity = await self._activity(request.brand_id, request.activity_id)
        return pb.GetActivityResponse(activity=activity_pb(activity, self._now(),
                                                           with_answers=_admin(request.view)))

    # --- sign-in ---
    def _once(self, method: str, request: pb.SignInRequest | pb.MakeUpSignInRequest,
              answer: type[pb.SignInResponse] | type[pb.MakeUpSignInResponse],
              ) -> sign_in.RunOnce:
        """The use case's recording, run once per request_id; the answer stored as protobuf."""
        async def once(
                record: Callable[[Connection], Awaitable[sign_in.SignInView]],
        ) -> sign_in.SignInView:
            async def work(conn: Connection) -> pb.SignInResponse | pb.MakeUpSignInResponse:
                return answer(record=sign_in_record_pb(await record(conn)))

            response = await self._idempotent.run(method, request, answer, work)
            return sign_in_view(response.record)

        return once

    async def SignIn(self, request: pb.SignInRequest,
                     context: grpc.aio.ServicerContext) -> pb.SignInResponse:
        view = await self._engagement.sign_in_today(
            request.brand_id, request.activity_id, request.account_id, request.request_id,
            self._once("SignIn", request, pb.SignInResponse))
        return pb.SignInResponse(record=sign_in_record_pb(view))

    async def MakeUpSignIn(self, request: pb.MakeUpSignInRequest,
                           context: grpc.aio.ServicerContext) -> pb.MakeUpSignInResponse:
        day = parse_local_date(require(request.local_date, "local_date"), "local_date")
        made_up = await self._engagement.make_up_sign_in(
            request.brand_id, request.activity_id, request.account_id, day,
            self._once("MakeUpSignIn", request, pb.MakeUpSignInResponse))
        record = sign_in_record_pb(made_up.view)
        if made_up.grants is not None:
            del record.rewards[:]
            record.rewards.extend(_grants_pb(made_up.grants))
        return pb.MakeUpSignInResponse(record=record)

    async def GetSignInStatus(self, request: pb.GetSignInStatusRequest,
                              context: grpc.aio.ServicerContext) -> pb.GetSignInStatusResponse:
        status = await self._engagement.sign_in_status(request.brand_id, request.activity_id,
                                                       request.account_id)
        return pb.GetSignInStatusResponse(
            today=status.today.isoformat(), signed_in_today=status.signed_today,
            current_streak_days=status.current_streak,
            recent_dates=[d.isoformat() for d in status.recent])

    # --- lottery ---
    async def DrawLottery(self, request: pb.DrawLotteryRequest,
                          context: grpc.aio.ServicerContext) -> pb.DrawLotteryResponse:
        result = await self._engagement.draw(request.brand_id, request.activity_id,
                                             request.account_id, request.request_id)
        _, config = await self._engagement.lottery(request.brand_id, request.activity_id)
        return pb.DrawLotteryResponse(draw=draw_pb(result.draw, config, result.grant))

    async def GetDraw(self, request: pb.GetDrawRequest,
                      context: grpc.aio.ServicerContext) -> pb.GetDrawResponse:
        found, config = await self._engagement.get_draw(request.brand_id, request.draw_id)
        return pb.GetDrawResponse(draw=draw_pb(found.draw, config, found.grant))

    async def ListDraws(self, request: pb.ListDrawsRequest,
                        context: grpc.aio.ServicerContext) -> pb.ListDrawsResponse:
        page, token, config = await self._engagement.list_draws(
            request.brand_id, request.activity_id, request.account_id, request.page_size,
            request.page_token)
        return pb.ListDrawsResponse(draws=[draw_pb(d.draw, config, d.grant) for d in page],
                                    next_page_token=token)

    async def _prize_statuses(self, config: LotteryConfig,
                              counts: dict[str, tuple[int, int]]) -> list[pb.PrizeStatus]:
        out = []
        for prize in config.prizes:
            stock, won = counts.get(prize.prize_id, (prize.stock, 0))
            out.append(pb.PrizeStatus(prize=json_format.ParseDict(prize_dict(prize),
                                                                  pb.Prize()),
                                      won=won, remaining=stock - won))
        return out

    async def GetLotteryStatus(self, request: pb.GetLotteryStatusRequest,
                               context: grpc.aio.ServicerContext
                               ) -> pb.GetLotteryStatusResponse:
        status = await self._engagement.lottery_status(request.brand_id, request.activity_id)
        return pb.GetLotteryStatusResponse(
            prizes=await self._prize_statuses(status.config, status.prize_counts),
            draws=status.draws,
            dead_letter_draws=[pb.DeadLetterDraw(draw_id=d, failure_reason=r)
                               for d, r in status.dead_letter])

    async def ReconcileLottery(self, request: pb.ReconcileLotteryRequest,
                               context: grpc.aio.ServicerContext
                               ) -> pb.ReconcileLotteryResponse:
        require(request.request_id, "request_id")
        _, config = await self._engagement.lottery(request.brand_id, request.activity_id)
        counts = await self._engagement.reconcile(request.brand_id, request.activity_id)
        return pb.ReconcileLotteryResponse(prizes=await self._prize_statuses(config, counts))

    # --- koi ---
    async def EnterKoiDraw(self, request: pb.EnterKoiDrawRequest,
                           context: grpc.aio.ServicerContext) -> pb.EnterKoiDrawResponse:
        now = self._now()
        participant = await self._engagement.participant(
            request.brand_id, request.activity_id, request.account_id, ActivityKind.LOTTERY,
            now)

        async def work(conn: Connection) -> pb.EnterKoiDrawResponse:
            view = await koi.enter_koi(conn, participant, now)
            return pb.EnterKoiDrawResponse(commitment=view.commitment,
                                           entrant_count=view.entrant_count)

        return await self._idempotent.run("EnterKoiDraw", request, pb.EnterKoiDrawResponse,
                                          work)

    async def GetKoiDraw(self, request: pb.GetKoiDrawRequest,
                         context: grpc.aio.ServicerContext) -> pb.GetKoiDrawResponse:
        view = await self._engagement.koi_draw(request.brand_id, request.activity_id)
        return pb.GetKoiDrawResponse(koi=koi_pb(view))

    async def RevealKoiDraw(self, request: pb.RevealKoiDrawRequest,
                            context: grpc.aio.ServicerContext) -> pb.RevealKoiDrawResponse:
        now = self._now()

        async def work(conn: Connection) -> pb.RevealKoiDrawResponse:
            activity = await activities.get_activity(conn, request.brand_id, request.activity_id)
            activity.require_kind(ActivityKind.LOTTERY)
            return pb.RevealKoiDrawResponse(koi=koi_pb(await koi.reveal_koi(conn, activity,
                                                                                 now)))

        response = await self._idempotent.run("RevealKoiDraw", request,
                                              pb.RevealKoiDrawResponse, work)
        await self._engagement.dispatch_due()
        return response

    async def VerifyKoiDraw(self, request: pb.VerifyKoiDrawRequest,
                            context: grpc.aio.ServicerContext) -> pb.VerifyKoiDrawResponse:
        verdict = verify_koi(require(request.seed, "seed"),
                             require(request.commitment, "commitment"),
                             list(request.entrant_account_ids), request.winner_count,
                             list(request.winner_account_ids))
        return pb.VerifyKoiDrawResponse(valid=verdict.valid, reason=verdict.reason,
                                        expected_winner_account_ids=verdict.expected_winners)

    # --- vote ---
    async def CastVote(self, request: pb.CastVoteRequest,
                       context: grpc.aio.ServicerContext) -> pb.CastVoteResponse:
        now = self._now()
        participant = await self._engagement.participant(
            request.brand_id, request.activity_id, request.account_id, ActivityKind.VOTE, now)

        async def work(conn: Connection) -> pb.CastVoteResponse:
            view = await social.cast_vote(conn, participant, request.option_id, now)
            response = pb.CastVoteResponse(
                tallies=[pb.VoteTally(option_id=o, label=label, votes=n)
                         for o, label, n in view.tallies],
                votes_left_today=view.votes_left_today)
            if view.gift_grant_id:
                response.gift.CopyFrom(pb.GrantedReward(grant_id=view.gift_grant_id,
                                                        state=pb.GRANT_STATE_PENDING))
            return response

        response = await self._idempotent.run("CastVote", request, pb.CastVoteResponse, work)
        if response.gift.grant_id:
            grants = await self._engagement.dispatch([response.gift.grant_id])
            response.gift.CopyFrom(grant_pb(grants[0] if grants else None))
        return response

    async def GetVoteResults(self, request: pb.GetVoteResultsRequest,
                             context: grpc.aio.ServicerContext) -> pb.GetVoteResultsResponse:
        tallies = await self._engagement.vote_results(request.brand_id, request.activity_id)
        return pb.GetVoteResultsResponse(
            tallies=[pb.VoteTally(option_id=o, label=label, votes=n) for o, label, n in tallies],
            total_votes=sum(n for _, _, n in tallies))

    # --- quiz ---
    async def GetQuiz(self, request: pb.GetQuizRequest,
                      context: grpc.aio.ServicerContext) -> pb.GetQuizResponse:
        activity = await self._activity(request.brand_id, request.activity_id)
        activity.require_kind(ActivityKind.QUIZ)
        config = activity.definition.config
        assert isinstance(config, QuizConfig)
        return pb.GetQuizResponse(
            activity_id=activity.activity_id, title=activity.title,
            questions=[json_format.ParseDict(question_dict(q, with_answers=False),
                                             pb.QuizQuestion()) for q in config.questions],
            max_attempts=config.max_attempts, points_per_correct=config.points_per_correct)

    async def SubmitQuiz(self, request: pb.SubmitQuizRequest,
                         context: grpc.aio.ServicerContext) -> pb.SubmitQuizResponse:
        now = self._now()
        participant = await self._engagement.participant(
            request.brand_id, request.activity_id, request.account_id, ActivityKind.QUIZ, now)
        answers = [(a.question_id, list(a.option_ids)) for a in request.answers]

        async def work(conn: Connection) -> pb.SubmitQuizResponse:
            result = await social.submit_quiz(conn, participant, answers, now)
            response = pb.SubmitQuizResponse(
                attempt=result.attempt, correct_answers=result.correct,
                total_questions=result.total, points_awarded=result.points,
                results=[pb.QuestionResult(question_id=q, correct=ok, correct_option_ids=c)
                         for q, ok, c in result.grades])
            if result.grant_id:
                response.grant.CopyFrom(pb.GrantedReward(grant_id=result.grant_id,
                                                         points=result.points,
                                                         state=pb.GRANT_STATE_PENDING))
            return response

        response = await self._idempotent.run("SubmitQuiz", request, pb.SubmitQuizResponse,
                                              work)
        if response.grant.grant_id:
            grants = await self._engagement.dispatch([response.grant.grant_id])
            response.grant.CopyFrom(grant_pb(grants[0] if grants else None))
        return response

    # --- invite ---
    async def GetInviteCode(self, request: pb.GetInviteCodeRequest,
                            context: grpc.aio.ServicerContext) -> pb.GetInviteCodeResponse:
        code, rewarded, cap = await self._engagement.member_invite_code(
            request.brand_id, request.activity_id, request.account_id)
        return pb.GetInviteCodeResponse(code=code, rewarded_invites=rewarded,
                                        max_rewarded_per_inviter=cap)

    async def ListInvites(self, request: pb.ListInvitesRequest,
                          context: grpc.aio.ServicerContext) -> pb.ListInvitesResponse:
        activity = await self._activity(request.brand_id, request.activity_id)
        activity.require_kind(ActivityKind.INVITE)
        inviter = require(request.inviter_account_id, "inviter_account_id")
        size = page_size(request.page_size)
        position = decode_page_token(request.page_token, ("t", "id"))
        after = (datetime.fromisoformat(position["t"]), position["id"]) if position else None
        async with self._db.connection() as conn:
            rows = await ParticipationRepository(conn).page_invites(
                activity.activity_id, inviter, size + 1, after)
        page = rows[:size]
        token = (encode_page_token({"t": page[-1]["accepted_at"].isoformat(),
                                    "id": page[-1]["invitee_account_id"]})
                 if len(rows) > size else "")
        return pb.ListInvitesResponse(
            invites=[pb.Invite(invitee_account_id=r["invitee_account_id"],
                               inviter_rewarded=r["inviter_rewarded"],
                               accept_time=timestamp(r["accepted_at"])) for r in page],
            next_page_token=token)

    async def ListMemberRewardGrants(self, request: pb.ListMemberRewardGrantsRequest,
                                     context: grpc.aio.ServicerContext
                                     ) -> pb.ListMemberRewardGrantsResponse:
        page, token = await self._engagement.member_grants(
            request.brand_id, request.account_id, request.page_size, request.page_token)
        return pb.ListMemberRewardGrantsResponse(grants=_grants_pb(page), next_page_token=token)

    async def ListFailedRewardGrants(self, request: pb.ListFailedRewardGrantsRequest,
                                     context: grpc.aio.ServicerContext
                                     ) -> pb.ListFailedRewardGrantsResponse:
        page, token = await self._engagement.failed_grants(request.brand_id, request.page_size,
                                                           request.page_token)
        return pb.ListFailedRewardGrantsResponse(grants=_grants_pb(page), next_page_token=token)
