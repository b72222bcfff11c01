"""What identity's use cases run with: the database, the token codec, the phone vault and
matcher, and the clock. Built once by the composition root (main.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from libs.clock import Clock, system_clock
from libs.db import Database
from services.identity.domain.phones import PhoneMatcher, PhoneVault
from services.identity.domain.tokens import TokenCodec

Reply = TypeVar("Reply")


@dataclass(frozen=True)
class IdentityContext:
    db: Database
    codec: TokenCodec
    vault: PhoneVault
    matcher: PhoneMatcher
    clock: Clock = system_clock
