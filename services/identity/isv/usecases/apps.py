"""Open-platform apps: registering one (its secret sealed at rest), reading it, its signing
key, its status, and authenticating an app by its key and secret."""

from __future__ import annotations

import hmac

from libs.clock import Clock
from libs.db import Connection
from libs.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unauthenticated,
    found,
    require,
)
from libs.idempotency import CommitOnce
from services.identity.isv.adapters.postgres import IsvRepository
from services.identity.isv.domain.apps import (
    DEFAULT_CALLS_PER_DAY,
    DEFAULT_CALLS_PER_MINUTE,
    MAX_CALLS_PER_DAY,
    MAX_CALLS_PER_MINUTE,
    App,
    AppStatus,
    new_app_key,
    new_app_secret,
    valid_app_key,
    valid_name,
    valid_quota,
    valid_redirect_uri,
    valid_scopes,
)
from services.identity.isv.domain.sealing import Sealed, SecretBox
from services.identity.isv.usecases.context import IsvContext, Reply


async def create_app(ctx: IsvContext, *, request_id: str, request_hash: bytes, name: str,
                     status: AppStatus, scopes: list[str], redirect_uri: str,
                     calls_per_minute: int, calls_per_day: int) -> tuple[App, str]:
    """Registers an app; the same request_id again returns the same app and secret (the
    secret is sealed, so this RPC keeps its own request_id record beside the app)."""
    async with ctx.db.transaction() as conn:
        return await _create(conn, ctx.box, request_id=request_id, request_hash=request_hash,
                             name=name, status=status, scopes=scopes,
                             redirect_uri=redirect_uri, calls_per_minute=calls_per_minute,
                             calls_per_day=calls_per_day, clock=ctx.clock)


async def _create(conn: Connection, box: SecretBox, *, request_id: str, request_hash: bytes,
                  name: str, status: AppStatus, scopes: list[str], redirect_uri: str,
                  calls_per_minute: int, calls_per_day: int,
                  clock: Clock) -> tuple[App, str]:
    request_id = require(request_id, "request_id")
    if len(request_id) > 128:
        raise InvalidArgument("request_id must be at most 128 characters", field="request_id",
                              reason="REQUEST_ID_TOO_LONG")
    app_scopes = valid_scopes(scopes)
    if not app_scopes:
        raise InvalidArgument("an app needs at least one scope", field="scopes",
                              reason="FIELD_REQUIRED")
    app = App(new_app_key(), valid_name(name), status, app_scopes,
              valid_redirect_uri(redirect_uri),
              valid_quota(calls_per_minute, DEFAULT_CALLS_PER_MINUTE, MAX_CALLS_PER_MINUTE,
                          "calls_per_minute"),
              valid_quota(calls_per_day, DEFAULT_CALLS_PER_DAY, MAX_CALLS_PER_DAY,
                          "calls_per_day"),
              clock())
    secret = new_app_secret()
    repo = IsvRepository(conn)
    if await repo.add_app(app, box.seal(secret, bound_to=app.app_key), request_id,
                          request_hash):
        return app, secret
    earlier = await repo.app_by_request(request_id)
    assert earlier is not None  # the conflicting row is committed and visible
    earlier_app, sealed, earlier_hash = earlier
    if earlier_hash != request_hash:
        raise FailedPrecondition(
            f"request_id {request_id!r} was already used with different parameters",
            reason="REQUEST_ID_REUSED", metadata={"request_id": request_id})
    return earlier_app, box.open(sealed, bound_to=earlier_app.app_key)


async def _app_and_sealed_secret(conn: Connection, app_key: str) -> tuple[App, Sealed]:
    return found(await IsvRepository(conn).get_app(valid_app_key(app_key)), f"app {app_key}",
                 reason="APP_NOT_FOUND", app_key=app_key)


async def get_app(ctx: IsvContext, app_key: str) -> App:
    async with ctx.db.connection() as conn:
        return await app_of(conn, app_key)


async def app_of(conn: Connection, app_key: str) -> App:
    """The app, in the caller's transaction; NotFound when there is none."""
    app, _ = await _app_and_sealed_secret(conn, app_key)
    return app


async def get_signing_key(ctx: IsvContext, app_key: str) -> tuple[App, str]:
    """The app and its plaintext secret (the gateway checks request signs with it)."""
    async with ctx.db.connection() as conn:
        return await _signing_key(conn, ctx.box, app_key)


async def _signing_key(conn: Connection, box: SecretBox, app_key: str) -> tuple[App, str]:
    app, sealed = await _app_and_sealed_secret(conn, app_key)
    return app, box.open(sealed, bound_to=app.app_key)


async def set_app_status(commit_once: CommitOnce[App, Reply], app_key: str,
                         status: AppStatus) -> Reply:
    return await commit_once(lambda conn: _set_status(conn, app_key, status))


async def _set_status(conn: Connection, app_key: str, status: AppStatus) -> App:
    return found(await IsvRepository(conn).set_status(valid_app_key(app_key), status),
                 f"app {app_key}", reason="APP_NOT_FOUND", app_key=app_key)


async def authenticated_app(conn: Connection, box: SecretBox, app_key: str,
                             app_secret: str) -> App:
    try:
        app, secret = await _signing_key(conn, box, app_key)
    except (NotFound, InvalidArgument):
        raise Unauthenticated("app_key or app_secret is wrong",
                              reason="APP_CREDENTIALS_INVALID") from None
    if not hmac.compare_digest(secret.encode(), app_secret.encode()):
        raise Unauthenticated("app_key or app_secret is wrong", reason="APP_CREDENTIALS_INVALID")
    app.require_active()
    return app
