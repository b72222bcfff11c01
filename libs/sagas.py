"""What a saga step does when it fails: one classification and one retry bound for every saga.

A failure is PERMANENT when trying again cannot change the answer (the other service refused:
FAILED_PRECONDITION, NOT_FOUND, INVALID_ARGUMENT, PERMISSION_DENIED, ALREADY_EXISTS, ...) and
TRANSIENT when it might (UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, RESOURCE_EXHAUSTED, INTERNAL,
or an exception that is not a domain error at all: a dropped connection, a timeout). Transient
failures are retried with exponential backoff up to `RetryPolicy.max_attempts`, then treated as
permanent ("RETRIES_EXHAUSTED"). A permanent failure is never retried: the step's declared
`Outcome` happens (compensate, fall back, refuse, or dead-letter with the reason).

Every step of every saga is declared once with `saga_step(...)` in the module that runs it;
`tests/libs/test_sagas.py` checks that every function that calls another service's
side effect is a declared step with a failure policy, so a new saga cannot skip this.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from libs.errors import Code, DomainError

TRANSIENT_CODES = frozenset({Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.ABORTED,
                             Code.RESOURCE_EXHAUSTED, Code.INTERNAL})
# What a stored failure reason may hold (it is shown to members and operators).
MAX_REASON_CHARS = 500


class Failure(enum.Enum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"


def classify(error: BaseException) -> Failure:
    """PERMANENT for a refusal (retrying cannot help), TRANSIENT for everything else."""
    if isinstance(error, DomainError):
        return Failure.TRANSIENT if error.code in TRANSIENT_CODES else Failure.PERMANENT
    return Failure.TRANSIENT


def is_transient(error: BaseException) -> bool:
    return classify(error) is Failure.TRANSIENT


def reason_of(error: BaseException) -> str:
    """`REASON: message` (bounded), as stored on a failed step and shown to people."""
    if isinstance(error, DomainError):
        text = f"{error.reason}: {error.message}"
    else:
        text = f"{type(error).__name__}: {error}"
    return text[:MAX_REASON_CHARS]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff from `base_seconds`, capped at `cap_seconds`, at most
    `max_attempts` attempts in all (the first one included)."""

    max_attempts: int = 10
    base_seconds: float = 1.0
    cap_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_seconds <= 0 or self.cap_seconds < self.base_seconds:
            raise ValueError(f"invalid retry policy {self!r}")

    def delay(self, attempts: int) -> float:
        """Seconds to wait after `attempts` failed attempts."""
        return min(self.cap_seconds, self.base_seconds * 2 ** min(max(attempts - 1, 0), 30))

    def exhausted(self, attempts: int) -> bool:
        """True once `attempts` failed attempts used up the bound."""
        return attempts >= self.max_attempts


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class Decision:
    """What to do with one failed attempt: retry after `delay` seconds, or give up for good
    with `reason` (the step's declared outcome then applies)."""

    retry: bool
    delay: float
    reason: str


def decide(error: BaseException, failed_attempts: int,
           policy: RetryPolicy = DEFAULT_RETRY) -> Decision:
    """`failed_attempts` counts this failure too."""
    reason = reason_of(error)
    if classify(error) is Failure.PERMANENT:
        return Decision(False, 0.0, reason)
    if policy.exhausted(failed_attempts):
        return Decision(False, 0.0, f"RETRIES_EXHAUSTED: {reason}"[:MAX_REASON_CHARS])
    return Decision(True, policy.delay(failed_attempts), reason)


class Outcome(enum.Enum):
    """What happens when a step gives up."""

    # Nothing was done yet: the caller is answered with the reason.
    REFUSE = "refuse"
    # Undo what earlier steps did (give the spend back), record the reason, tell the member.
    COMPENSATE = "compensate"
    # Give the member the fallback ("thanks for participating") instead of what failed.
    FALLBACK = "fallback"
    # Stop and keep the item with its reason where the operator can list it.
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True)
class SagaStep:
    saga: str
    step: str
    # The function that runs the step: "package.module:Qualified.name".
    where: str
    on_permanent: Outcome
    # The outcome once transient failures exhausted `retry`.
    on_exhausted: Outcome
    retry: RetryPolicy
    # Where the member and the operator see the outcome.
    visible_in: str


_STEPS: dict[tuple[str, str], SagaStep] = {}


def saga_step(saga: str, step: str, *, where: str, on_permanent: Outcome,
              on_exhausted: Outcome, visible_in: str,
              retry: RetryPolicy = DEFAULT_RETRY) -> SagaStep:
    """Declare a step and its failure policy (once, at import time of the module running it)."""
    declared = SagaStep(saga, step, where, on_permanent, on_exhausted, retry, visible_in)
    existing = _STEPS.get((saga, step))
    if existing is not None and existing != declared:
        raise ValueError(f"saga step {saga}/{step} declared twice, differently")
    _STEPS[(saga, step)] = declared
    return declared


def steps() -> tuple[SagaStep, ...]:
    return tuple(_STEPS.values())
