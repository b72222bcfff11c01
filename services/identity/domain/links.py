"""Linked external identities: which kinds exist, and what a valid link looks like."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime

from libs.errors import InvalidArgument, require

_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_\-.@:=+/]{1,128}$")
_SCOPE = re.compile(r"^[A-Za-z0-9_\-.]{0,64}$")


class IdentityKind(enum.Enum):
    WECHAT_OA_OPENID = "wechat_oa_openid"
    WECHAT_MINI_OPENID = "wechat_mini_openid"
    WECHAT_UNIONID = "wechat_unionid"
    BRAND_CRM_MEMBER_ID = "brand_crm_member_id"

    @property
    def needs_scope(self) -> bool:
        """OpenIDs are per app id and CRM ids per brand; a unionid may stand alone."""
        return self is not IdentityKind.WECHAT_UNIONID


class LinkAction(enum.Enum):
    LINKED = "linked"
    UNLINKED = "unlinked"


@dataclass(frozen=True)
class IdentityRef:
    kind: IdentityKind
    scope: str
    external_id: str


@dataclass(frozen=True)
class LinkedIdentity:
    ref: IdentityRef
    account_id: str
    linked_at: datetime


@dataclass(frozen=True)
class LinkHistoryEntry:
    entry_id: int
    ref: IdentityRef
    action: LinkAction
    reason: str
    occurred_at: datetime


def identity_ref(kind: IdentityKind | None, scope: str, external_id: str) -> IdentityRef:
    if kind is None:
        raise InvalidArgument("kind must be one of the identity kinds", field="kind")
    scope = scope.strip()
    if kind.needs_scope and not scope:
        raise InvalidArgument(f"scope is required for {kind.name} (the app id or brand id)",
                              field="scope", reason="FIELD_REQUIRED")
    if not _SCOPE.match(scope):
        raise InvalidArgument("scope must be at most 64 letters, digits or _-.", field="scope")
    external_id = require(external_id, "external_id")
    if not _EXTERNAL_ID.match(external_id):
        raise InvalidArgument("external_id must be 1-128 printable characters without spaces",
                              field="external_id")
    return IdentityRef(kind, scope, external_id)
