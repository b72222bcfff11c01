"""Which failures are outages of a dependency (retry later), not bugs (fix the code).

One rule for every service and the gateway: a failure to reach or keep a connection to
PostgreSQL, Redis, another service or any socket answers UNAVAILABLE (gRPC) / 503 (HTTP), so
that callers and retry policies treat it as transient; anything else stays INTERNAL / 500.
"""

from __future__ import annotations

import errno
import socket

import asyncpg
import grpc
import redis.exceptions

# PostgreSQL: the connection is gone or cannot be made (SQLSTATE class 08 and the client's own
# connection errors), the server is shutting down or starting up (57P01-57P03), or it has no
# connection slot left (53300).
_POSTGRES_OUTAGES: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
)
# Redis: refused, reset, timed out, or still loading its data after a restart.
_REDIS_OUTAGES: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
# Sockets: refused, reset, aborted (ConnectionError), a name that does not resolve, and
# TimeoutError, which is what a pool acquire, an asyncpg command_timeout or asyncio.timeout
# raise when a dependency does not answer in time. Other OSErrors (a missing file, a
# permission) are bugs or misconfiguration, not outages, unless their errno is a network one.
_OUTAGES = (*_POSTGRES_OUTAGES, *_REDIS_OUTAGES, ConnectionError, TimeoutError, socket.gaierror)
_NETWORK_ERRNOS = frozenset({
    errno.ENETUNREACH, errno.ENETDOWN, errno.ENETRESET, errno.EHOSTUNREACH, errno.EHOSTDOWN,
    errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.ETIMEDOUT, errno.EPIPE,
    errno.EADDRNOTAVAIL,
})


def is_outage(exc: BaseException) -> bool:
    """True when `exc` (or every error of an exception group) is a dependency outage."""
    if isinstance(exc, BaseExceptionGroup):
        return all(is_outage(inner) for inner in exc.exceptions)
    if isinstance(exc, _OUTAGES):
        return True
    if isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS:
        return True
    # Another service that could not be reached (or is itself in an outage).
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code() is grpc.StatusCode.UNAVAILABLE
    # asyncpg reports use of a connection that the server closed as a bare InterfaceError.
    return isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc)
