"""gRPC servicer for engagement: protobuf <-> use cases, nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import grpc
from google.protobuf import json_format

from brandclub.engagement.v1 import engagement_service_pb2 as pb
from brandclub.engagement.v1 import engagement_service_pb2_grpc as pb_grpc
from libs.errors import InvalidArgument, require
from libs.idempotency import CommitOnce
from libs.protoconv import from_timestamp, timestamp
from services.engagement.api.answers import StoredAnswers
from services.engagement.domain.activities import (
    Activity,
    ActivitySpec,
    ActivityState,
    Owner,
    OwnerKind,
)
from services.engagement.domain.activity_kinds import ActivityKind, LotteryConfig, Reward
from services.engagement.domain.draws import Draw
from services.engagement.domain.grants import Grant
from services.engagement.domain.participation import parse_weights, pick
from services.engagement.domain.spec_form import prize_dict, question_dict, spec_dict
from services.engagement.domain.spec_parsing import parse_spec
from services.engagement.usecases import koi, sign_in, social
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
    """The activity, its state told at `now`."""
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


def _changed_pb(activity: Activity) -> pb.Activity:
    """An activity as a write answers it: its state told at the moment of the change."""
    assert activity.updated_at is not None
    return activity_pb(activity, activity.updated_at, with_answers=True)


def activity_from_pb(message: pb.Activity) -> Activity:
    """The activity a stored write answer was made from (`_changed_pb`'s inverse)."""
    state = next(k for k, v in _STATES.items() if v == message.state)
    if state is ActivityState.LIVE:
        state = ActivityState.SCHEDULED  # live is scheduled with its start time passed
    spec = _spec(message.spec) if message.HasField("spec") else None
    return Activity(
        activity_id=message.activity_id, brand_id=message.brand_id,
        kind=next(k for k, v in _KINDS.items() if v == message.kind), state=state,
        title=message.title, starts_at=from_timestamp(message.start_time),
        ends_at=from_timestamp(message.end_time), created_at=from_timestamp(message.create_time),
        owner=Owner(next(k for k, v in _OWNER_KINDS.items() if v == message.owner.kind),
                    message.owner.id),
        spec=spec, version=message.version,
        updated_at=(from_timestamp(message.update_time)
                    if message.HasField("update_time") else None),
        closed_at=(from_timestamp(message.close_time)
                   if message.HasField("close_time") else None))


def _tallies_pb(tallies: Sequence[tuple[str, str, int]]) -> list[pb.VoteTally]:
    return [pb.VoteTally(option_id=o, label=label, votes=n) for o, label, n in tallies]


def vote_pb(view: social.VoteView) -> pb.CastVoteResponse:
    response = pb.CastVoteResponse(tallies=_tallies_pb(view.tallies),
                                   votes_left_today=view.votes_left_today)
    if view.gift_grant_id:
        response.gift.CopyFrom(pb.GrantedReward(grant_id=view.gift_grant_id,
                                                state=pb.GRANT_STATE_PENDING))
    return response


def vote_view(response: pb.CastVoteResponse) -> social.VoteView:
    """The view a stored CastVote answer was made from (vote_pb's inverse)."""
    return social.VoteView([(t.option_id, t.label, t.votes) for t in response.tallies],
                           response.votes_left_today, response.gift.grant_id)


def quiz_result_pb(result: social.QuizResult) -> pb.SubmitQuizResponse:
    response = pb.SubmitQuizResponse(
        attempt=result.attempt, correct_answers=result.correct,
        total_questions=result.total, points_awarded=result.points,
        results=[pb.QuestionResult(question_id=q, correct=ok, correct_option_ids=c)
                 for q, ok, c in result.grades])
    if result.grant_id:
        response.grant.CopyFrom(pb.GrantedReward(grant_id=result.grant_id, points=result.points,
                                                 state=pb.GRANT_STATE_PENDING))
    return response


def quiz_result(response: pb.SubmitQuizResponse) -> social.QuizResult:
    """The result a stored SubmitQuiz answer was made from (quiz_result_pb's inverse)."""
    return social.QuizResult(
        response.attempt, response.correct_answers, response.total_questions,
        [(r.question_id, r.correct, list(r.correct_option_ids)) for r in response.results],
        response.points_awarded, response.grant.grant_id)


def koi_entry_pb(entry: koi.KoiEntry) -> pb.EnterKoiDrawResponse:
    return pb.EnterKoiDrawResponse(commitment=entry.commitment,
                                   entrant_count=entry.entrant_count)


def koi_entry(response: pb.EnterKoiDrawResponse) -> koi.KoiEntry:
    return koi.KoiEntry(response.commitment, response.entrant_count)


def koi_view(message: pb.KoiDraw) -> koi.KoiView:
    """The view a stored koi draw was made from (koi_pb's inverse)."""
    return koi.KoiView(
        message.activity_id, message.commitment, from_timestamp(message.entries_close_time),
        message.entrant_count, message.winner_count,
        from_timestamp(message.reveal_time) if message.revealed else None, message.seed,
        list(message.entrant_account_ids), list(message.winner_account_ids))


def _prize_statuses(config: LotteryConfig,
                    counts: dict[str, tuple[int, int]]) -> list[pb.PrizeStatus]:
    out = []
    for prize in config.prizes:
        stock, won = counts.get(prize.prize_id, (prize.stock, 0))
        out.append(pb.PrizeStatus(prize=json_format.ParseDict(prize_dict(prize), pb.Prize()),
                                  won=won, remaining=stock - won))
    return out


_ACTIVITY_RESPONSES: dict[str, type[pb.CreateActivityResponse] | type[pb.UpdateActivityResponse]
                          | type[pb.PublishActivityResponse] | type[pb.CloseActivityResponse]] = {
    "CreateActivity": pb.CreateActivityResponse, "UpdateActivity": pb.UpdateActivityResponse,
    "PublishActivity": pb.PublishActivityResponse, "CloseActivity": pb.CloseActivityResponse}


class EngagementServicer(pb_grpc.EngagementServiceServicer):
    """Each RPC: protobuf to the use case's arguments, one use-case call, its result to
    protobuf (errors are mapped by the server's interceptor)."""

    def __init__(self, engagement: Engagement, answers: StoredAnswers) -> None:
        self._engagement = engagement
        self._answers = answers

    # --- activities ---
    async def ListActivities(self, request: pb.ListActivitiesRequest,
                             context: grpc.aio.ServicerContext) -> pb.ListActivitiesResponse:
        page = await self._engagement.list_activities(
            request.brand_id, request.page_size, request.page_token,
            state=next((k for k, v in _STATES.items() if v == request.state), None),
            kind=next((k for k, v in _KINDS.items() if v == request.kind), None),
            window_start=(from_timestamp(request.window_start_time)
                          if request.HasField("window_start_time") else None),
            window_end=(from_timestamp(request.window_end_time)
                        if request.HasField("window_end_time") else None))
        return pb.ListActivitiesResponse(
            activities=[activity_pb(a, page.at, with_answers=_admin(request.view))
                        for a in page.activities],
            next_page_token=page.next_page_token)

    def _activity_once(self, method: str, request: pb.CreateActivityRequest
                       | pb.UpdateActivityRequest | pb.PublishActivityRequest
                       | pb.CloseActivityRequest) -> CommitOnce[Activity, Activity]:
        response_type = _ACTIVITY_RESPONSES[method]
        return self._answers.once(method, request, response_type,
                                  lambda a: response_type(activity=_changed_pb(a)),
                                  lambda r: activity_from_pb(r.activity))

    async def CreateActivity(self, request: pb.CreateActivityRequest,
                             context: grpc.aio.ServicerContext) -> pb.CreateActivityResponse:
        spec = _spec(request.spec)
        owner = _owner(request.owner, "owner", optional=False)
        assert owner is not None
        activity = await self._engagement.create_activity(
            request.brand_id, owner, spec, request.publish,
            self._activity_once("CreateActivity", request))
        return pb.CreateActivityResponse(activity=_changed_pb(activity))

    async def UpdateActivity(self, request: pb.UpdateActivityRequest,
                             context: grpc.aio.ServicerContext) -> pb.UpdateActivityResponse:
        spec = _spec(request.spec)
        actor = _owner(request.actor, "actor", optional=True)
        activity = await self._engagement.update_activity(
            request.brand_id, request.activity_id, actor, spec,
            self._activity_once("UpdateActivity", request))
        return pb.UpdateActivityResponse(activity=_changed_pb(activity))

    async def PublishActivity(self, request: pb.PublishActivityRequest,
                              context: grpc.aio.ServicerContext) -> pb.PublishActivityResponse:
        activity = await self._engagement.publish_activity(
            request.brand_id, request.activity_id,
            _owner(request.actor, "actor", optional=True),
            self._activity_once("PublishActivity", request))
        return pb.PublishActivityResponse(activity=_changed_pb(activity))

    async def CloseActivity(self, request: pb.CloseActivityRequest,
                            context: grpc.aio.ServicerContext) -> pb.CloseActivityResponse:
        activity = await self._engagement.close_activity(
            request.brand_id, request.activity_id,
            _owner(request.actor, "actor", optional=True),
            self._activity_once("CloseActivity", request))
        return pb.CloseActivityResponse(activity=_changed_pb(activity))

    async def GetActivity(self, request: pb.GetActivityRequest,
                          context: grpc.aio.ServicerContext) -> pb.GetActivityResponse:
        activity, at = await self._engagement.read_activity(request.brand_id,
                                                            request.activity_id)
        return pb.GetActivityResponse(activity=activity_pb(activity, at,
                                                           with_answers=_admin(request.view)))

    # --- sign-in ---
    async def SignIn(self, request: pb.SignInRequest,
                     context: grpc.aio.ServicerContext) -> pb.SignInResponse:
        view = await self._engagement.sign_in_today(
            request.brand_id, request.activity_id, request.account_id, request.request_id,
            self._answers.once("SignIn", request, pb.SignInResponse,
                               lambda v: pb.SignInResponse(record=sign_in_record_pb(v)),
                               lambda r: sign_in_view(r.record)))
        return pb.SignInResponse(record=sign_in_record_pb(view))

    async def MakeUpSignIn(self, request: pb.MakeUpSignInRequest,
                           context: grpc.aio.ServicerContext) -> pb.MakeUpSignInResponse:
        made_up = await self._engagement.make_up_sign_in(
            request.brand_id, request.activity_id, request.account_id, request.local_date,
            self._answers.once("MakeUpSignIn", request, pb.MakeUpSignInResponse,
                               lambda v: pb.MakeUpSignInResponse(record=sign_in_record_pb(v)),
                               lambda r: sign_in_view(r.record)))
        record = sign_in_record_pb(made_up.view)
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
        result, config = await self._engagement.draw_lottery(
            request.brand_id, request.activity_id, request.account_id, request.request_id)
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

    async def GetLotteryStatus(self, request: pb.GetLotteryStatusRequest,
                               context: grpc.aio.ServicerContext
                               ) -> pb.GetLotteryStatusResponse:
        status = await self._engagement.lottery_status(request.brand_id, request.activity_id)
        return pb.GetLotteryStatusResponse(
            prizes=_prize_statuses(status.config, status.prize_counts),
            draws=status.draws,
            dead_letter_draws=[pb.DeadLetterDraw(draw_id=d, failure_reason=r)
                               for d, r in status.dead_letter])

    async def ReconcileLottery(self, request: pb.ReconcileLotteryRequest,
                               context: grpc.aio.ServicerContext
                               ) -> pb.ReconcileLotteryResponse:
        config, counts = await self._engagement.reconcile_lottery(
            request.brand_id, request.activity_id, request.request_id)
        return pb.ReconcileLotteryResponse(prizes=_prize_statuses(config, counts))

    # --- koi ---
    async def EnterKoiDraw(self, request: pb.EnterKoiDrawRequest,
                           context: grpc.aio.ServicerContext) -> pb.EnterKoiDrawResponse:
        entry = await self._engagement.enter_koi_draw(
            request.brand_id, request.activity_id, request.account_id,
            self._answers.once("EnterKoiDraw", request, pb.EnterKoiDrawResponse,
                               koi_entry_pb, koi_entry))
        return koi_entry_pb(entry)

    async def GetKoiDraw(self, request: pb.GetKoiDrawRequest,
                         context: grpc.aio.ServicerContext) -> pb.GetKoiDrawResponse:
        view = await self._engagement.koi_draw(request.brand_id, request.activity_id)
        return pb.GetKoiDrawResponse(koi=koi_pb(view))

    async def RevealKoiDraw(self, request: pb.RevealKoiDrawRequest,
                            context: grpc.aio.ServicerContext) -> pb.RevealKoiDrawResponse:
        view = await self._engagement.reveal_koi_draw(
            request.brand_id, request.activity_id,
            self._answers.once("RevealKoiDraw", request, pb.RevealKoiDrawResponse,
                               lambda v: pb.RevealKoiDrawResponse(koi=koi_pb(v)),
                               lambda r: koi_view(r.koi)))
        return pb.RevealKoiDrawResponse(koi=koi_pb(view))

    async def VerifyKoiDraw(self, request: pb.VerifyKoiDrawRequest,
                            context: grpc.aio.ServicerContext) -> pb.VerifyKoiDrawResponse:
        verdict = await self._engagement.verify_koi_draw(
            request.seed, request.commitment, list(request.entrant_account_ids),
            request.winner_count, list(request.winner_account_ids))
        return pb.VerifyKoiDrawResponse(valid=verdict.valid, reason=verdict.reason,
                                        expected_winner_account_ids=verdict.expected_winners)

    # --- vote ---
    async def CastVote(self, request: pb.CastVoteRequest,
                       context: grpc.aio.ServicerContext) -> pb.CastVoteResponse:
        voted = await self._engagement.vote(
            request.brand_id, request.activity_id, request.account_id, request.option_id,
            self._answers.once("CastVote", request, pb.CastVoteResponse, vote_pb, vote_view))
        response = vote_pb(voted.view)
        if voted.view.gift_grant_id:
            response.gift.CopyFrom(grant_pb(voted.gift))
        return response

    async def GetVoteResults(self, request: pb.GetVoteResultsRequest,
                             context: grpc.aio.ServicerContext) -> pb.GetVoteResultsResponse:
        tallies = await self._engagement.vote_results(request.brand_id, request.activity_id)
        return pb.GetVoteResultsResponse(tallies=_tallies_pb(tallies),
                                         total_votes=sum(n for _, _, n in tallies))

    # --- quiz ---
    async def GetQuiz(self, request: pb.GetQuizRequest,
                      context: grpc.aio.ServicerContext) -> pb.GetQuizResponse:
        activity, config = await self._engagement.quiz(request.brand_id, request.activity_id)
        return pb.GetQuizResponse(
            activity_id=activity.activity_id, title=activity.title,
            questions=[json_format.ParseDict(question_dict(q, with_answers=False),
                                             pb.QuizQuestion()) for q in config.questions],
            max_attempts=config.max_attempts, points_per_correct=config.points_per_correct)

    async def SubmitQuiz(self, request: pb.SubmitQuizRequest,
                         context: grpc.aio.ServicerContext) -> pb.SubmitQuizResponse:
        submitted = await self._engagement.answer_quiz(
            request.brand_id, request.activity_id, request.account_id,
            [(a.question_id, list(a.option_ids)) for a in request.answers],
            self._answers.once("SubmitQuiz", request, pb.SubmitQuizResponse, quiz_result_pb,
                               quiz_result))
        response = quiz_result_pb(submitted.result)
        if submitted.result.grant_id:
            response.grant.CopyFrom(grant_pb(submitted.grant))
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
        page = await self._engagement.invites(request.brand_id, request.activity_id,
                                              request.inviter_account_id, request.page_size,
                                              request.page_token)
        return pb.ListInvitesResponse(
            invites=[pb.Invite(invitee_account_id=i.invitee_account_id,
                               inviter_rewarded=i.inviter_rewarded,
                               accept_time=timestamp(i.accepted_at)) for i in page.invites],
            next_page_token=page.next_page_token)

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
