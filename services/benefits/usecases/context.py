"""What benefits' request use cases run with (one per process, built by main.compose)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import Message

from libs.clock import Clock, system_clock
from libs.db import Database
from libs.idempotency import CommitOnce, IdempotentExecutor, Response, Result
from services.benefits.ports import ActivitiesPort, MembershipPort


@dataclass(frozen=True)
class BenefitsContext:
    db: Database
    membership: MembershipPort
    activities: ActivitiesPort
    clock: Clock = system_clock

    def once(self, method: str, request: Message, response_type: type[Response],
             translate: Callable[[Result], Response]) -> CommitOnce[Result, Response]:
        """How a mutation rpc commits: once per request id, its result translated to the
        reply that is stored (libs.idempotency)."""
        return IdempotentExecutor(self.db).commit_once(method, request, response_type,
                                                       translate)
