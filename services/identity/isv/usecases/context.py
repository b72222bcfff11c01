"""What the open platform's use cases run with: the database, the box that seals app secrets,
and the clock. Built once by isv/composition.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from libs.clock import Clock, system_clock
from libs.db import Database
from services.identity.isv.domain.sealing import SecretBox

Reply = TypeVar("Reply")


@dataclass(frozen=True)
class IsvContext:
    db: Database
    box: SecretBox
    clock: Clock = system_clock
