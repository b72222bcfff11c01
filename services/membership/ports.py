"""What the membership use cases need from other services, as ports: the identity service's
phone vault. `adapters/upstreams.py` implements them over gRPC."""

from __future__ import annotations

from typing import Protocol

from services.membership.domain.model import PhoneMatchResult


class IdentityPort(Protocol):
    async def store_phone(self, request_id: str, account_id: str, phone: str) -> None:
        """Vault the number; a bad number is refused INVALID_ARGUMENT on field phone.
        Safe to repeat with the same request id."""

    async def match_phone(self, request_id: str, brand_id: str,
                          account_id: str) -> PhoneMatchResult:
        """Match the vaulted number against the brand's CRM (connected brands only).
        Safe to repeat with the same request id."""
