"""What each saga step of engagement does when it fails (libs.sagas; the table is in
architecture.md). The retry policies are read from this module at each failure, so a test
can shorten them here."""

from __future__ import annotations

from libs.sagas import Outcome, RetryPolicy, saga_step

# Delivering an owed reward through benefits: ~12 attempts over about an hour, then stop.
GRANT_RETRY = RetryPolicy(max_attempts=12, base_seconds=0.5, cap_seconds=900.0)
# Giving a cost back must not give up early: about a day of attempts, then a dead letter.
REFUND_RETRY = RetryPolicy(max_attempts=100, base_seconds=1.0, cap_seconds=900.0)
# A draw's spend that benefits does not answer: the recovery loop tries again this often.
SPEND_RETRY = RetryPolicy(max_attempts=10, base_seconds=1.0, cap_seconds=120.0)
_GRANT = "services.engagement.usecases.rewards:RewardDispatch._run_claimed"
_LOTTERY = "services.engagement.usecases.lottery:LotteryDraws"
_GRANT_SEEN = ("the answer's GrantedReward (state, failure_reason) and the draw / vote / quiz / "
               "invite record it belongs to; operators: ListFailedRewardGrants")
for _saga in ("sign_in", "vote", "quiz", "invite", "koi_draw"):
    saga_step(_saga, "grant_reward", where=_GRANT, on_permanent=Outcome.DEAD_LETTER,
              on_exhausted=Outcome.DEAD_LETTER, retry=GRANT_RETRY, visible_in=_GRANT_SEEN)
saga_step("sign_in", "make_up_spend",
          where="services.engagement.usecases.sign_in:SignIns.make_up_spend",
          on_permanent=Outcome.REFUSE, on_exhausted=Outcome.REFUSE,
          visible_in="the MakeUpSignIn answer (UNAVAILABLE: retry with the same request_id)")
saga_step("sign_in", "make_up_refund",
          where="services.engagement.usecases.sign_in:SignIns.refund_make_up",
          on_permanent=Outcome.DEAD_LETTER, on_exhausted=Outcome.DEAD_LETTER,
          retry=REFUND_RETRY,
          visible_in="owed as a reward grant in 'compensating' until given back "
                     "(RewardDispatch._refund_grant); ListFailedRewardGrants when it cannot be")
saga_step("lottery_draw", "spend", where=f"{_LOTTERY}._spend",
          on_permanent=Outcome.REFUSE, on_exhausted=Outcome.COMPENSATE, retry=SPEND_RETRY,
          visible_in="the DrawLottery answer (refused with the reason, or DRAW_IN_PROGRESS "
                     "then the final answer to a retry with the same request_id)")
saga_step("lottery_draw", "check_prizes",
          where="services.engagement.usecases.lottery:LotteryDraws._undeliverable_prizes",
          on_permanent=Outcome.FALLBACK, on_exhausted=Outcome.FALLBACK,
          retry=RetryPolicy(max_attempts=1),
          visible_in="the draw's recorded weights (a prize the member cannot get weighs 0)")
saga_step("lottery_draw", "draw_and_record",
          where="services.engagement.usecases.lottery:LotteryDraws._draw_and_record",
          on_permanent=Outcome.COMPENSATE, on_exhausted=Outcome.COMPENSATE,
          visible_in="the DrawLottery answer (refused with the reason; the cost given back)")
saga_step("lottery_draw", "grant_prize", where=_GRANT, on_permanent=Outcome.COMPENSATE,
          on_exhausted=Outcome.COMPENSATE, retry=GRANT_RETRY,
          visible_in="Draw.outcome DRAW_OUTCOME_NOT_DELIVERED with grant.failure_reason and "
                     "grant.cost_refunded (DrawLottery, GetDraw, ListDraws); "
                     "ListFailedRewardGrants")
saga_step("reward_grant", "refund_cost",
          where="services.engagement.usecases.rewards:RewardDispatch._refund_grant",
          on_permanent=Outcome.DEAD_LETTER, on_exhausted=Outcome.DEAD_LETTER,
          retry=REFUND_RETRY, visible_in="ListFailedRewardGrants (cost_refunded false)")
saga_step("lottery_draw", "compensate", where=f"{_LOTTERY}._compensate",
          on_permanent=Outcome.DEAD_LETTER, on_exhausted=Outcome.DEAD_LETTER,
          retry=REFUND_RETRY,
          visible_in="draw_sagas 'dead_letter' with its reason: GetLotteryStatus "
                     "dead_letter_draws; the DrawLottery answer names REFUND_FAILED")
