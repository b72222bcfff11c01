"""libs.sagas: one failure classification and retry bound for every saga, and a sweep that
every saga step declares what happens when it fails (issue 11 §3)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from libs.errors import Aborted as AbortedError
from libs.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from libs.sagas import (
    DEFAULT_RETRY,
    Failure,
    Outcome,
    RetryPolicy,
    SagaStep,
    classify,
    decide,
    saga_step,
    steps,
)

ROOT = Path(__file__).resolve().parents[2]
# The modules that run sagas; importing them declares their steps.
SAGA_MODULES = ("services.engagement.usecases.saga_steps", "services.benefits.usecases.mall",
                "services.messaging.usecases.journey_runner")
# Every saga the product has (issue 11 §3); each must declare its steps.
SAGAS = {"lottery_draw", "koi_draw", "mall_redemption", "sign_in", "invite", "vote", "quiz",
         "journey", "reward_grant"}
# Calls that change another service's state through a port: a function making one is a saga
# step and must be declared with its failure policy.
SIDE_EFFECTS = {"grant_points", "spend_points", "reverse_points", "issue_coupon"}
# Local saga steps (one service's own transactions) that must be declared too.
LOCAL_STEPS = {"services/benefits/usecases/mall.py": {"spend_step", "fulfil_step", "_new"}}


def declared() -> tuple[SagaStep, ...]:
    for module in SAGA_MODULES:
        importlib.import_module(module)
    return steps()


@pytest.mark.parametrize(("error", "kind"), [
    (FailedPrecondition("x", reason="COUPON_LIMIT_REACHED"), Failure.PERMANENT),
    (NotFound("x", reason="COUPON_TEMPLATE_NOT_FOUND"), Failure.PERMANENT),
    (InvalidArgument("x", field="f"), Failure.PERMANENT),
    (PermissionDenied("x", reason="CALLER_NOT_ALLOWED"), Failure.PERMANENT),
    (AlreadyExists("x", reason="ALREADY_SIGNED_IN"), Failure.PERMANENT),
    (Unauthenticated("x", reason="NO_CREDENTIALS"), Failure.PERMANENT),
    (Unavailable("x", reason="UNAVAILABLE"), Failure.TRANSIENT),
    (AbortedError("x", reason="CONFLICT"), Failure.TRANSIENT),
    (ResourceExhausted("x", reason="QUOTA"), Failure.TRANSIENT),
    (ConnectionResetError("reset"), Failure.TRANSIENT),
    (TimeoutError(), Failure.TRANSIENT),
])
def test_refusals_are_permanent_and_outages_transient(error: Exception, kind: Failure) -> None:
    """Every refusal code is permanent (never retried); unavailability, conflicts, quotas and
    non-domain errors (a dropped connection) are transient."""
    assert classify(error) is kind


def test_transient_failures_back_off_up_to_the_bound_then_give_up() -> None:
    """Delays double from the base up to the cap; the bound's last failure gives up with
    RETRIES_EXHAUSTED and the last reason; a permanent failure gives up at once."""
    policy = RetryPolicy(max_attempts=4, base_seconds=1.0, cap_seconds=3.0)
    down = Unavailable("benefits is down", reason="DOWN")
    decisions = [decide(down, attempt, policy) for attempt in (1, 2, 3, 4)]
    assert [(d.retry, d.delay) for d in decisions] == [(True, 1.0), (True, 2.0), (True, 3.0),
                                                       (False, 0.0)]
    assert decisions[-1].reason == "RETRIES_EXHAUSTED: DOWN: benefits is down"
    refused = decide(FailedPrecondition("held", reason="COUPON_LIMIT_REACHED"), 1, policy)
    assert (refused.retry, refused.reason) == (False, "COUPON_LIMIT_REACHED: held")
    assert decide(down, 1).retry and not decide(down, DEFAULT_RETRY.max_attempts).retry


def test_a_retry_policy_without_a_bound_is_refused() -> None:
    """A policy must have at least one attempt and a positive, capped backoff."""
    for bad in ((0, 1.0, 1.0), (3, 0.0, 1.0), (3, 2.0, 1.0)):
        with pytest.raises(ValueError):
            RetryPolicy(*bad)


def test_a_step_cannot_be_declared_twice_differently() -> None:
    """Two modules cannot give one step two policies."""
    saga_step("test_saga", "step", where="tests.libs.test_sagas:x",
              on_permanent=Outcome.REFUSE, on_exhausted=Outcome.REFUSE, visible_in="here")
    with pytest.raises(ValueError):
        saga_step("test_saga", "step", where="tests.libs.test_sagas:x",
                  on_permanent=Outcome.COMPENSATE, on_exhausted=Outcome.REFUSE,
                  visible_in="here")


def test_every_saga_declares_its_steps_with_an_outcome_and_a_place_it_is_seen() -> None:
    """Each saga of the product has declared steps; each step names a real function, a
    bounded retry policy, an outcome for permanent failures and for the bound, and where the
    member or operator sees it."""
    found = [s for s in declared() if s.saga != "test_saga"]
    assert {s.saga for s in found} >= SAGAS, SAGAS - {s.saga for s in found}
    for step in found:
        module, _, qualname = step.where.partition(":")
        target: object = importlib.import_module(module)
        for part in qualname.split("."):
            target = getattr(target, part)
        assert callable(target), step
        assert isinstance(step.on_permanent, Outcome) and isinstance(step.on_exhausted, Outcome)
        assert 1 <= step.retry.max_attempts <= 1000, step
        assert step.visible_in.strip(), step


def _functions_calling(path: Path, names: set[str], *, attribute_only: bool) -> set[str]:
    """Qualified names of the functions in `path` that call one of `names`."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(node: ast.AST, scope: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, [*scope, child.name])
                continue
            if isinstance(child, ast.Call):
                func = child.func
                called = (func.attr if isinstance(func, ast.Attribute)
                          else None if attribute_only
                          else func.id if isinstance(func, ast.Name) else None)
                if called in names and scope:
                    found.add(".".join(scope))
            visit(child, scope)

    visit(tree, [])
    return found


def test_every_function_with_a_cross_service_side_effect_is_a_declared_step() -> None:
    """Sweep over services/: a function that grants, spends, reverses or issues through
    another service's port (or runs a local saga step) is declared in libs.sagas, so a new
    saga cannot appear without a defined outcome for each failure."""
    where = {s.where for s in declared()}
    missing = []
    for path in sorted((ROOT / "services").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if "/adapters/" in relative or "/api/" in relative:
            continue  # the ports' own implementations and the servicers that translate
        module = relative.removesuffix(".py").replace("/", ".")
        callers = _functions_calling(path, SIDE_EFFECTS, attribute_only=True)
        callers |= LOCAL_STEPS.get(relative, set())
        missing += [f"{module}:{q}" for q in sorted(callers) if f"{module}:{q}" not in where]
    assert not missing, f"saga steps without a declared failure policy: {missing}"


def test_permanent_failures_are_never_retried_by_any_step() -> None:
    """Whatever a step's policy, a refusal gives up at the first attempt."""
    for step in declared():
        decision = decide(FailedPrecondition("no", reason="REFUSED"), 1, step.retry)
        assert not decision.retry, step


def test_domain_errors_keep_their_reason_in_the_stored_failure() -> None:
    """The stored reason starts with the refusal's reason, so the answer can name it."""
    error: DomainError = NotFound("gone", reason="COUPON_TEMPLATE_NOT_FOUND")
    assert decide(error, 1).reason.startswith("COUPON_TEMPLATE_NOT_FOUND: ")
