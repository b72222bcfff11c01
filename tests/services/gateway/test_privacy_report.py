"""The erasure report as the gateway assembles it (pure): per cancellation, each service done
or pending, complete when every service is done, overdue once pending past 24 hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.gateway.domain.privacy import (
    ERASURE_BOUND,
    Removal,
    ServiceErasure,
    erasure_report,
    export_file,
)

CANCELLED = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _erasure(member_id: str = "mem_1", after: timedelta = timedelta(seconds=5)) -> ServiceErasure:
    return ServiceErasure(member_id, "evt_1", CANCELLED, CANCELLED + after,
                          [Removal("campaign_recipients", 1, "pseudonymised")])


def _status(by_service: dict[str, list[ServiceErasure]], now: datetime) -> dict[str, object]:
    report = erasure_report("brd_1", "acc_1", by_service["membership"], by_service, now)
    [request] = report["requests"]
    return dict(request)


def test_complete_when_every_service_has_erased() -> None:
    """Every service done: complete, with the last service's time and nothing pending."""
    request = _status({"membership": [_erasure(after=timedelta(0))],
                       "messaging": [_erasure(after=timedelta(minutes=3))]},
                      CANCELLED + timedelta(days=3))
    assert request["status"] == "complete" and request["pending_services"] == []
    assert request["completed_at"] == (CANCELLED + timedelta(minutes=3)).isoformat()
    assert request["due_by"] == (CANCELLED + ERASURE_BOUND).isoformat()


def test_pending_within_the_bound_and_overdue_after_it() -> None:
    """A service without the cancellation's erasure is pending; past 24 hours, overdue (on the
    boundary itself still pending); another cancellation's erasure does not count."""
    by_service = {"membership": [_erasure()], "benefits": [_erasure("mem_0")]}
    assert _status(by_service, CANCELLED + ERASURE_BOUND)["status"] == "pending"
    late = _status(by_service, CANCELLED + ERASURE_BOUND + timedelta(seconds=1))
    assert late["status"] == "overdue" and late["pending_services"] == ["benefits"]
    assert late["completed_at"] is None
    assert late["services"]["benefits"] == {"status": "pending"}  # type: ignore[index]


def test_no_cancellation_no_request() -> None:
    """An account that never cancelled has an empty report."""
    assert erasure_report("brd_1", "acc_1", [], {"membership": []}, CANCELLED)["requests"] == []


def test_export_file_shape() -> None:
    """The file names its format, the member and when it was made, sections per service."""
    document = export_file("brd_1", "acc_1", [], CANCELLED)
    assert document == {"format": "brandclub.member-data-export/1", "brand_id": "brd_1",
                        "account_id": "acc_1", "generated_at": CANCELLED.isoformat(),
                        "services": {}}
