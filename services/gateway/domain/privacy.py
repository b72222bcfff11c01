"""Privacy requests as the gateway assembles them from every service's answer: the member's
data as one file, and the erasure report of each cancellation (docs/operations.md, Privacy
requests). Pure: the answers and the time come in as plain values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# What the file says it is, so a reader (or a later version of this code) knows its shape.
EXPORT_FORMAT = "brandclub.member-data-export/1"
# A cancellation's erasure is due in every service within this (docs/operations.md).
ERASURE_BOUND = timedelta(hours=24)


@dataclass(frozen=True)
class ServiceExport:
    service: str
    # section name -> (description, records, truncated)
    sections: Sequence[tuple[str, str, list[dict[str, Any]], bool]]


@dataclass(frozen=True)
class Removal:
    table: str
    rows: int
    action: str  # "erased" | "pseudonymised"


@dataclass(frozen=True)
class ServiceErasure:
    member_id: str
    event_id: str
    cancelled_at: datetime
    erased_at: datetime
    removals: Sequence[Removal]


def export_file(brand_id: str, account_id: str, exports: Sequence[ServiceExport],
                now: datetime) -> dict[str, Any]:
    """One JSON document: what each service holds about the member, section by section."""
    return {
        "format": EXPORT_FORMAT,
        "brand_id": brand_id,
        "account_id": account_id,
        "generated_at": now.isoformat(),
        "services": {
            export.service: {
                "sections": {name: {"description": description, "records": records,
                                    "truncated": truncated}
                             for name, description, records, truncated in export.sections}}
            for export in exports},
    }


def erasure_report(brand_id: str, account_id: str,
                   cancellations: Sequence[ServiceErasure],
                   by_service: Mapping[str, Sequence[ServiceErasure]],
                   now: datetime) -> dict[str, Any]:
    """Per cancellation (membership's erasure, made in the cancellation itself): each service's
    erasure, done (what, where, when) or pending; a request not complete within
    ERASURE_BOUND of the cancellation is overdue."""
    requests = []
    for cancellation in cancellations:
        due = cancellation.cancelled_at + ERASURE_BOUND
        services: dict[str, Any] = {}
        for service, erasures in by_service.items():
            done = next((e for e in erasures if e.member_id == cancellation.member_id), None)
            services[service] = _service_status(done)
        pending = [name for name, status in services.items() if status["status"] == "pending"]
        finished = max((e["erased_at"] for e in services.values() if e["status"] == "done"),
                       default=None)
        requests.append({
            "member_id": cancellation.member_id,
            "event_id": cancellation.event_id,
            "cancelled_at": cancellation.cancelled_at.isoformat(),
            "due_by": due.isoformat(),
            "status": ("complete" if not pending
                       else "overdue" if now > due else "pending"),
            "completed_at": finished if not pending else None,
            "pending_services": pending,
            "services": services,
        })
    return {"brand_id": brand_id, "account_id": account_id, "generated_at": now.isoformat(),
            "requests": requests}


def _service_status(erasure: ServiceErasure | None) -> dict[str, Any]:
    if erasure is None:
        return {"status": "pending"}
    return {"status": "done", "erased_at": erasure.erased_at.isoformat(),
            "removals": [{"table": r.table, "rows": r.rows, "action": r.action}
                         for r in erasure.removals]}
