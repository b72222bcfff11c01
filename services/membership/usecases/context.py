"""What the use cases of the membership process run with, built once by the composition
root: the database, the clock and, for the membership service itself, the card cache and
the other services it calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import Message

from libs.clock import Clock, system_clock
from libs.db import Database
from libs.idempotency import CommitOnce, IdempotentExecutor, Response, Result
from services.membership.adapters.card_cache import CardCache
from services.membership.ports import IdentityPort


@dataclass(frozen=True, kw_only=True)
class Context:
    db: Database
    clock: Clock = system_clock

    def once(self, method: str, request: Message, response_type: type[Response],
             translate: Callable[[Result], Response]) -> CommitOnce[Result, Response]:
        """How a mutation RPC commits: once per request id, its result translated to the
        reply that is stored and that a replay answers again (libs.idempotency)."""
        return IdempotentExecutor(self.db).commit_once(method, request, response_type,
                                                       translate)


@dataclass(frozen=True, kw_only=True)
class MembershipContext(Context):
    cards: CardCache
    identity: IdentityPort
