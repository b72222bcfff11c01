"""The authenticated caller of an HTTP request."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from libs.errors import PermissionDenied


class PrincipalKind(enum.Enum):
    SHOPPER = "shopper"
    MERCHANT = "merchant"


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    account_id: str
    brand_id: str
    expires_at: datetime
    merchant_user_id: str = ""

    def require_shopper(self) -> str:
        """The shopper's own account id: storefront calls never name another account."""
        if self.kind is not PrincipalKind.SHOPPER:
            raise PermissionDenied("this endpoint is for shoppers", reason="SHOPPER_TOKEN_REQUIRED")
        return self.account_id

    def require_merchant(self) -> str:
        """The one brand a merchant token is scoped to: console calls never name another."""
        if self.kind is not PrincipalKind.MERCHANT or not self.brand_id:
            raise PermissionDenied("this endpoint is for merchants",
                                   reason="MERCHANT_TOKEN_REQUIRED")
        return self.brand_id
