"""Typed domain errors.

Domain code raises these without knowing about gRPC; the server interceptor maps them to a
`google.rpc.Status` with an `ErrorInfo` (AIP-193), and the gateway maps them to HTTP.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


class Code(enum.IntEnum):
    """The gRPC canonical codes that domain errors use (same numbers as grpc.StatusCode)."""

    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16


class DomainError(Exception):
    """An expected failure with a machine-readable reason (UPPER_SNAKE) and details."""

    code: Code = Code.FAILED_PRECONDITION

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        metadata: Mapping[str, str] | None = None,
        domain: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.metadata = dict(metadata or {})
        self.domain = domain

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason}: {self.message})"


class InvalidArgument(DomainError):
    code = Code.INVALID_ARGUMENT

    def __init__(self, message: str, *, field: str, reason: str = "INVALID_ARGUMENT",
                 metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message, reason=reason, metadata={"field": field, **(metadata or {})})
        self.field = field


class NotFound(DomainError):
    code = Code.NOT_FOUND


class AlreadyExists(DomainError):
    code = Code.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    code = Code.FAILED_PRECONDITION


class PermissionDenied(DomainError):
    code = Code.PERMISSION_DENIED


class Unauthenticated(DomainError):
    code = Code.UNAUTHENTICATED


class ResourceExhausted(DomainError):
    code = Code.RESOURCE_EXHAUSTED


class Aborted(DomainError):
    code = Code.ABORTED


class Unavailable(DomainError):
    code = Code.UNAVAILABLE


class RemoteError(DomainError):
    """An error answered by another service, carried across with its code and reason."""

    def __init__(self, code: Code, message: str, *, reason: str, domain: str,
                 metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message, reason=reason, metadata=metadata, domain=domain)
        self.code = code


def require(value: str, field: str) -> str:
    """Refuse an empty required string field, naming it."""
    if not value or not value.strip():
        raise InvalidArgument(f"{field} is required", field=field, reason="FIELD_REQUIRED")
    return value.strip()


def found(value: T | None, what: str, *, reason: str, **metadata: str) -> T:
    """`value`, or NotFound naming `what` (e.g. "activity act_1 for brand b_1") and `reason`.

    The one get-or-NotFound: `activity = found(await repo.get(...), f"activity {id}",
    reason="ACTIVITY_NOT_FOUND", activity_id=id)`.
    """
    if value is None:
        raise NotFound(f"{what} does not exist", reason=reason, metadata=metadata)
    return value
