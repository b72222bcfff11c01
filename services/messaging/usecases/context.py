"""What messaging's request use cases run with (one per process, built by main.compose)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.message import Message

from libs.clock import Clock, system_clock
from libs.db import Database
from libs.idempotency import CommitOnce, IdempotentExecutor, Response, Result
from services.messaging.adapters.crypto import CredentialCipher
from services.messaging.ports import AudienceSource, BenefitsPort

# The stamp a draft built from a request carries until the use case saves it at its own time.
UNSAVED = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class MessagingContext:
    db: Database
    cipher: CredentialCipher
    audience: AudienceSource
    benefits: BenefitsPort
    clock: Clock = system_clock

    def once(self, method: str, request: Message, response_type: type[Response],
             translate: Callable[[Result], Response]) -> CommitOnce[Result, Response]:
        """How a mutation rpc commits: once per request id, its result translated to the
        reply that is stored (libs.idempotency)."""
        return IdempotentExecutor(self.db).commit_once(method, request, response_type,
                                                       translate)
