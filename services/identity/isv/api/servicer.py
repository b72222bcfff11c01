"""gRPC servicer for the open platform's apps and authorisations: protobuf <-> use cases."""

from __future__ import annotations

import grpc

from brandclub.identity.v1 import isv_service_pb2 as pb
from brandclub.identity.v1 import isv_service_pb2_grpc as pb_grpc
from libs.errors import InvalidArgument
from libs.idempotency import IdempotentExecutor, fingerprint
from libs.protoconv import timestamp
from services.identity.isv.domain.apps import App, AppStatus, Authorization
from services.identity.isv.usecases import apps, authorizations
from services.identity.isv.usecases.context import IsvContext

_STATUSES = {pb.APP_STATUS_TEST: AppStatus.TEST,
             pb.APP_STATUS_PRODUCTION: AppStatus.PRODUCTION,
             pb.APP_STATUS_SUSPENDED: AppStatus.SUSPENDED}
_STATUS_PB = {value: key for key, value in _STATUSES.items()}


def _status(value: int) -> AppStatus:
    if value not in _STATUSES:
        raise InvalidArgument("status must be TEST, PRODUCTION or SUSPENDED", field="status")
    return _STATUSES[value]  # type: ignore[index]


def app_pb(app: App) -> pb.App:
    return pb.App(app_key=app.app_key, name=app.name, status=_STATUS_PB[app.status],
                  scopes=list(app.scopes), redirect_uri=app.redirect_uri,
                  calls_per_minute=app.calls_per_minute, calls_per_day=app.calls_per_day,
                  create_time=timestamp(app.created_at))


def authorization_pb(authorization: Authorization) -> pb.Authorization:
    message = pb.Authorization(
        authorization_id=authorization.authorization_id, app_key=authorization.app_key,
        app_name=authorization.app_name, brand_id=authorization.brand_id,
        shop_id=authorization.shop_id, scopes=list(authorization.scopes),
        granted_by=authorization.granted_by, grant_time=timestamp(authorization.granted_at))
    if authorization.revoked_at is not None:
        message.revoke_time.CopyFrom(timestamp(authorization.revoked_at))
    return message


def grant_pb(grant: authorizations.TokenGrant) -> pb.TokenGrant:
    return pb.TokenGrant(
        access_token=grant.access_token, refresh_token=grant.refresh_token,
        expires_in_seconds=int((grant.access_expires_at - grant.issued_at).total_seconds()),
        refresh_expires_in_seconds=int(
            (grant.refresh_expires_at - grant.issued_at).total_seconds()),
        scopes=list(grant.authorization.scopes), shop_id=grant.authorization.shop_id,
        brand_id=grant.authorization.brand_id, issue_time=timestamp(grant.issued_at))


class IsvServicer(pb_grpc.IsvServiceServicer):
    """Translates protobuf to the open platform's use cases and back; each RPC is one call."""

    def __init__(self, ctx: IsvContext) -> None:
        self._ctx = ctx
        self._idempotent = IdempotentExecutor(ctx.db)

    async def CreateApp(self, request: pb.CreateAppRequest,
                        context: grpc.aio.ServicerContext) -> pb.CreateAppResponse:
        status = _status(request.status)
        if status is AppStatus.SUSPENDED:
            raise InvalidArgument("a new app starts in TEST or PRODUCTION", field="status")
        app, secret = await apps.create_app(
            self._ctx, request_id=request.request_id, request_hash=fingerprint(request),
            name=request.name, status=status, scopes=list(request.scopes),
            redirect_uri=request.redirect_uri, calls_per_minute=request.calls_per_minute,
            calls_per_day=request.calls_per_day)
        return pb.CreateAppResponse(app=app_pb(app), app_secret=secret)

    async def GetApp(self, request: pb.GetAppRequest,
                     context: grpc.aio.ServicerContext) -> pb.GetAppResponse:
        return pb.GetAppResponse(app=app_pb(await apps.get_app(self._ctx, request.app_key)))

    async def GetAppSigningKey(self, request: pb.GetAppSigningKeyRequest,
                               context: grpc.aio.ServicerContext
                               ) -> pb.GetAppSigningKeyResponse:
        app, secret = await apps.get_signing_key(self._ctx, request.app_key)
        return pb.GetAppSigningKeyResponse(app=app_pb(app), app_secret=secret)

    async def SetAppStatus(self, request: pb.SetAppStatusRequest,
                           context: grpc.aio.ServicerContext) -> pb.SetAppStatusResponse:
        return await apps.set_app_status(
            self._idempotent.commit_once("SetAppStatus", request, pb.SetAppStatusResponse,
                                         lambda app: pb.SetAppStatusResponse(app=app_pb(app))),
            request.app_key, _status(request.status))

    async def AuthorizeApp(self, request: pb.AuthorizeAppRequest,
                           context: grpc.aio.ServicerContext) -> pb.AuthorizeAppResponse:
        code, expires, uri = await authorizations.authorize_app(
            self._ctx, app_key=request.app_key, brand_id=request.brand_id,
            shop_id=request.shop_id, redirect_uri=request.redirect_uri,
            scopes=list(request.scopes), granted_by=request.granted_by)
        return pb.AuthorizeAppResponse(code=code, expire_time=timestamp(expires),
                                       redirect_uri=uri)

    async def ExchangeCode(self, request: pb.ExchangeCodeRequest,
                           context: grpc.aio.ServicerContext) -> pb.ExchangeCodeResponse:
        grant = await authorizations.exchange_code(self._ctx, app_key=request.app_key,
                                                   app_secret=request.app_secret,
                                                   code=request.code)
        return pb.ExchangeCodeResponse(grant=grant_pb(grant))

    async def RefreshAccessToken(self, request: pb.RefreshAccessTokenRequest,
                                 context: grpc.aio.ServicerContext
                                 ) -> pb.RefreshAccessTokenResponse:
        grant = await authorizations.refresh_access_token(
            self._ctx, app_key=request.app_key, app_secret=request.app_secret,
            refresh_token=request.refresh_token)
        return pb.RefreshAccessTokenResponse(grant=grant_pb(grant))

    async def VerifyAccessToken(self, request: pb.VerifyAccessTokenRequest,
                                context: grpc.aio.ServicerContext
                                ) -> pb.VerifyAccessTokenResponse:
        verified = await authorizations.verify_access_token(
            self._ctx, app_key=request.app_key, access_token=request.access_token)
        authorization = verified.authorization
        return pb.VerifyAccessTokenResponse(
            authorization_id=authorization.authorization_id, brand_id=authorization.brand_id,
            shop_id=authorization.shop_id, scopes=list(authorization.scopes),
            expire_time=timestamp(verified.expires_at))

    async def ListAuthorizations(self, request: pb.ListAuthorizationsRequest,
                                 context: grpc.aio.ServicerContext
                                 ) -> pb.ListAuthorizationsResponse:
        page = await authorizations.list_authorizations(
            self._ctx, brand_id=request.brand_id, include_revoked=request.include_revoked,
            requested_page_size=request.page_size, page_token=request.page_token)
        return pb.ListAuthorizationsResponse(
            authorizations=[authorization_pb(a) for a in page.authorizations],
            next_page_token=page.next_page_token)

    async def RevokeAuthorization(self, request: pb.RevokeAuthorizationRequest,
                                  context: grpc.aio.ServicerContext
                                  ) -> pb.RevokeAuthorizationResponse:
        return await authorizations.revoke_authorization(
            self._ctx, self._idempotent.commit_once(
                "RevokeAuthorization", request, pb.RevokeAuthorizationResponse,
                lambda revoked: pb.RevokeAuthorizationResponse(
                    authorization=authorization_pb(revoked))),
            brand_id=request.brand_id, app_key=request.app_key, shop_id=request.shop_id)
