"""gRPC servicer for identity: protobuf <-> use cases."""

from __future__ import annotations

import base64

import grpc

from brandclub.identity.v1 import identity_service_pb2 as pb
from brandclub.identity.v1 import identity_service_pb2_grpc as pb_grpc
from libs.errors import InvalidArgument
from libs.idempotency import IdempotentExecutor
from libs.protoconv import timestamp
from services.identity.domain.accounts import Account
from services.identity.domain.imports import ImportStatus, PhoneMatchImport, RowError
from services.identity.domain.links import (
    IdentityKind,
    IdentityRef,
    LinkAction,
    LinkedIdentity,
    identity_ref,
)
from services.identity.domain.merchants import MerchantUser
from services.identity.domain.phones import MATCH_KEY_VERSION, MATCH_RULE
from services.identity.domain.tokens import Kind
from services.identity.usecases import (
    accounts,
    links,
    merchants,
    phone_matching,
    phones,
    tokens,
)
from services.identity.usecases.context import IdentityContext

_KINDS = {Kind.SHOPPER: pb.PRINCIPAL_KIND_SHOPPER, Kind.MERCHANT: pb.PRINCIPAL_KIND_MERCHANT}
_IDENTITY_KINDS = {
    pb.IDENTITY_KIND_WECHAT_OA_OPENID: IdentityKind.WECHAT_OA_OPENID,
    pb.IDENTITY_KIND_WECHAT_MINI_OPENID: IdentityKind.WECHAT_MINI_OPENID,
    pb.IDENTITY_KIND_WECHAT_UNIONID: IdentityKind.WECHAT_UNIONID,
    pb.IDENTITY_KIND_BRAND_CRM_MEMBER_ID: IdentityKind.BRAND_CRM_MEMBER_ID,
}
_IDENTITY_KINDS_PB = {v: k for k, v in _IDENTITY_KINDS.items()}
_ACTIONS = {LinkAction.LINKED: pb.LINK_ACTION_LINKED, LinkAction.UNLINKED: pb.LINK_ACTION_UNLINKED}
_PURPOSES = {pb.REVEAL_PURPOSE_SMS_DELIVERY: "sms_delivery",
             pb.REVEAL_PURPOSE_VOICE_DELIVERY: "voice_delivery"}
_IMPORT_STATUSES = {ImportStatus.RECEIVING: pb.IMPORT_STATUS_RECEIVING,
                    ImportStatus.COMPLETED: pb.IMPORT_STATUS_COMPLETED}


def account_pb(account: Account) -> pb.Account:
    return pb.Account(account_id=account.account_id,
                      marketplace_account_id=account.marketplace_account_id,
                      create_time=timestamp(account.created_at))


def ref_of(kind: pb.IdentityKind.ValueType, scope: str, external_id: str) -> IdentityRef:
    return identity_ref(_IDENTITY_KINDS.get(kind), scope, external_id)


def linked_pb(link: LinkedIdentity) -> pb.LinkedIdentity:
    return pb.LinkedIdentity(kind=_IDENTITY_KINDS_PB[link.ref.kind], scope=link.ref.scope,
                             external_id=link.ref.external_id, account_id=link.account_id,
                             link_time=timestamp(link.linked_at))


def import_pb(imp: PhoneMatchImport) -> pb.PhoneMatchImport:
    message = pb.PhoneMatchImport(
        import_id=imp.import_id, brand_id=imp.brand_id, status=_IMPORT_STATUSES[imp.status],
        expected_rows=imp.expected_rows, lines_received=imp.lines_received,
        accepted_rows=imp.accepted_rows, rejected_rows=imp.rejected_rows,
        chunks_received=imp.chunks_received, create_time=timestamp(imp.created_at))
    if imp.completed_at is not None:
        message.complete_time.CopyFrom(timestamp(imp.completed_at))
    return message


def row_error_pb(error: RowError) -> pb.ImportRowError:
    return pb.ImportRowError(line=error.line, reason=error.reason, message=error.message)


def match_pb(result: tuple[str, str]) -> pb.MatchPhoneForBrandResponse:
    encrypted, crm_member_id = result
    if not crm_member_id:
        return pb.MatchPhoneForBrandResponse(result=pb.PHONE_MATCH_RESULT_NEW)
    return pb.MatchPhoneForBrandResponse(result=pb.PHONE_MATCH_RESULT_MATCHED,
                                         encrypted_phone=encrypted, crm_member_id=crm_member_id)


def merchant_pb(user: MerchantUser) -> pb.MerchantUser:
    return pb.MerchantUser(merchant_user_id=user.merchant_user_id, brand_id=user.brand_id,
                           login_name=user.login_name, display_name=user.display_name,
                           disabled=user.disabled, create_time=timestamp(user.created_at))


class IdentityServicer(pb_grpc.IdentityServiceServicer):
    """Translates protobuf to identity's use cases and back; each RPC is one use-case call."""

    def __init__(self, ctx: IdentityContext) -> None:
        self._ctx = ctx
        self._idempotent = IdempotentExecutor(ctx.db)

    async def EnsureAccount(self, request: pb.EnsureAccountRequest,
                            context: grpc.aio.ServicerContext) -> pb.EnsureAccountResponse:
        return await accounts.ensure_account(
            self._idempotent.commit_once(
                "EnsureAccount", request, pb.EnsureAccountResponse,
                lambda result: pb.EnsureAccountResponse(account=account_pb(result[0]),
                                                        created=result[1])),
            request.marketplace_account_id)

    async def GetAccount(self, request: pb.GetAccountRequest,
                         context: grpc.aio.ServicerContext) -> pb.GetAccountResponse:
        account = await accounts.get_account(self._ctx, request.account_id)
        return pb.GetAccountResponse(account=account_pb(account))

    async def IssueShopperToken(self, request: pb.IssueShopperTokenRequest,
                                context: grpc.aio.ServicerContext
                                ) -> pb.IssueShopperTokenResponse:
        token, claims = await tokens.issue_shopper_token(self._ctx, request.account_id,
                                                         request.ttl_seconds)
        return pb.IssueShopperTokenResponse(token=token, expire_time=timestamp(claims.expires_at))

    async def VerifyToken(self, request: pb.VerifyTokenRequest,
                          context: grpc.aio.ServicerContext) -> pb.VerifyTokenResponse:
        claims = await tokens.verify_token(self._ctx, request.token)
        shopper = claims.kind is Kind.SHOPPER
        return pb.VerifyTokenResponse(
            kind=_KINDS[claims.kind],
            account_id=claims.subject if shopper else "",
            brand_id=claims.brand_id,
            expire_time=timestamp(claims.expires_at),
            merchant_user_id="" if shopper else claims.subject,
        )

    # --- linked identities --------------------------------------------------------------

    async def LinkIdentity(self, request: pb.LinkIdentityRequest,
                           context: grpc.aio.ServicerContext) -> pb.LinkIdentityResponse:
        return await links.link_identity(
            self._ctx, self._idempotent.commit_once(
                "LinkIdentity", request, pb.LinkIdentityResponse,
                lambda result: pb.LinkIdentityResponse(identity=linked_pb(result[0]),
                                                       linked=result[1])),
            request.account_id, ref_of(request.kind, request.scope, request.external_id))

    async def UnlinkIdentity(self, request: pb.UnlinkIdentityRequest,
                             context: grpc.aio.ServicerContext) -> pb.UnlinkIdentityResponse:
        return await links.unlink_identity(
            self._ctx, self._idempotent.commit_once(
                "UnlinkIdentity", request, pb.UnlinkIdentityResponse,
                lambda result: pb.UnlinkIdentityResponse(identity=linked_pb(result[0]),
                                                         unlink_time=timestamp(result[1]))),
            request.account_id, ref_of(request.kind, request.scope, request.external_id),
            request.reason)

    async def ListLinkedIdentities(self, request: pb.ListLinkedIdentitiesRequest,
                                   context: grpc.aio.ServicerContext
                                   ) -> pb.ListLinkedIdentitiesResponse:
        linked, token = await links.list_linked_identities(
            self._ctx, request.account_id, request.page_size, request.page_token,
            kind=_IDENTITY_KINDS.get(request.kind), scope=request.scope.strip())
        return pb.ListLinkedIdentitiesResponse(identities=[linked_pb(link) for link in linked],
                                               next_page_token=token)

    async def ListIdentityLinkHistory(self, request: pb.ListIdentityLinkHistoryRequest,
                                      context: grpc.aio.ServicerContext
                                      ) -> pb.ListIdentityLinkHistoryResponse:
        entries, token = await links.link_history(self._ctx, request.account_id,
                                                  request.page_size, request.page_token)
        return pb.ListIdentityLinkHistoryResponse(
            entries=[pb.IdentityLinkHistoryEntry(
                kind=_IDENTITY_KINDS_PB[e.ref.kind], scope=e.ref.scope,
                external_id=e.ref.external_id, action=_ACTIONS[e.action], reason=e.reason,
                occur_time=timestamp(e.occurred_at)) for e in entries],
            next_page_token=token)

    async def ResolveIdentity(self, request: pb.ResolveIdentityRequest,
                              context: grpc.aio.ServicerContext) -> pb.ResolveIdentityResponse:
        account = await links.resolve_identity(
            self._ctx, ref_of(request.kind, request.scope, request.external_id))
        return pb.ResolveIdentityResponse(account=account_pb(account))

    # --- phone vault ----------------------------------------------------------------------

    async def StorePhone(self, request: pb.StorePhoneRequest,
                         context: grpc.aio.ServicerContext) -> pb.StorePhoneResponse:
        changed, masked = await phones.store_phone(self._ctx, request.account_id, request.phone)
        return pb.StorePhoneResponse(changed=changed, masked_phone=masked)

    async def RevealPhoneForDelivery(self, request: pb.RevealPhoneForDeliveryRequest,
                                     context: grpc.aio.ServicerContext
                                     ) -> pb.RevealPhoneForDeliveryResponse:
        purpose = _PURPOSES.get(request.purpose)
        if purpose is None:
            raise InvalidArgument("purpose must be SMS_DELIVERY or VOICE_DELIVERY",
                                  field="purpose")
        phone = await phones.reveal_phone_for_delivery(
            self._ctx, request.account_id, request.brand_id, purpose, request.message_id)
        return pb.RevealPhoneForDeliveryResponse(phone_e164=phone)

    # --- encrypted phone matching -----------------------------------------------------------

    async def GetPhoneMatchKey(self, request: pb.GetPhoneMatchKeyRequest,
                               context: grpc.aio.ServicerContext
                               ) -> pb.GetPhoneMatchKeyResponse:
        key = phone_matching.phone_match_key(self._ctx, request.brand_id)
        return pb.GetPhoneMatchKeyResponse(brand_id=key.brand_id,
                                           key_base64=base64.b64encode(key.key).decode(),
                                           key_version=MATCH_KEY_VERSION, rule=MATCH_RULE)

    async def StartPhoneMatchImport(self, request: pb.StartPhoneMatchImportRequest,
                                    context: grpc.aio.ServicerContext
                                    ) -> pb.StartPhoneMatchImportResponse:
        return await phone_matching.start_import(
            self._ctx, self._idempotent.commit_once(
                "StartPhoneMatchImport", request, pb.StartPhoneMatchImportResponse,
                lambda imp: pb.StartPhoneMatchImportResponse(phone_import=import_pb(imp))),
            request.brand_id, request.expected_rows)

    async def AppendPhoneMatchRows(self, request: pb.AppendPhoneMatchRowsRequest,
                                   context: grpc.aio.ServicerContext
                                   ) -> pb.AppendPhoneMatchRowsResponse:
        return await phone_matching.append_rows(
            self._idempotent.commit_once(
                "AppendPhoneMatchRows", request, pb.AppendPhoneMatchRowsResponse,
                lambda result: pb.AppendPhoneMatchRowsResponse(
                    phone_import=import_pb(result.imp), accepted_rows=result.accepted,
                    rejected_rows=result.rejected,
                    errors=[row_error_pb(e) for e in result.errors])),
            request.brand_id, request.import_id, request.chunk_index, request.csv)

    async def CompletePhoneMatchImport(self, request: pb.CompletePhoneMatchImportRequest,
                                       context: grpc.aio.ServicerContext
                                       ) -> pb.CompletePhoneMatchImportResponse:
        return await phone_matching.complete_import(
            self._ctx, self._idempotent.commit_once(
                "CompletePhoneMatchImport", request, pb.CompletePhoneMatchImportResponse,
                lambda imp: pb.CompletePhoneMatchImportResponse(phone_import=import_pb(imp))),
            request.brand_id, request.import_id)

    async def GetPhoneMatchImport(self, request: pb.GetPhoneMatchImportRequest,
                                  context: grpc.aio.ServicerContext
                                  ) -> pb.GetPhoneMatchImportResponse:
        imp = await phone_matching.get_import(self._ctx, request.brand_id, request.import_id)
        return pb.GetPhoneMatchImportResponse(phone_import=import_pb(imp))

    async def ListPhoneMatchImportErrors(self, request: pb.ListPhoneMatchImportErrorsRequest,
                                         context: grpc.aio.ServicerContext
                                         ) -> pb.ListPhoneMatchImportErrorsResponse:
        errors, token = await phone_matching.import_errors(
            self._ctx, request.brand_id, request.import_id, request.page_size,
            request.page_token)
        return pb.ListPhoneMatchImportErrorsResponse(errors=[row_error_pb(e) for e in errors],
                                                     next_page_token=token)

    async def MatchPhoneForBrand(self, request: pb.MatchPhoneForBrandRequest,
                                 context: grpc.aio.ServicerContext
                                 ) -> pb.MatchPhoneForBrandResponse:
        return await phone_matching.match_phone_for_brand(
            self._ctx, self._idempotent.commit_once(
                "MatchPhoneForBrand", request, pb.MatchPhoneForBrandResponse, match_pb),
            request.brand_id, request.account_id)

    # --- merchant users ------------------------------------------------------------------

    async def CreateMerchantUser(self, request: pb.CreateMerchantUserRequest,
                                 context: grpc.aio.ServicerContext
                                 ) -> pb.CreateMerchantUserResponse:
        return await merchants.create_merchant_user(
            self._ctx, self._idempotent.commit_once(
                "CreateMerchantUser", request, pb.CreateMerchantUserResponse,
                lambda user: pb.CreateMerchantUserResponse(user=merchant_pb(user))),
            request.brand_id, request.login_name, request.display_name, request.password)

    async def GetMerchantUser(self, request: pb.GetMerchantUserRequest,
                              context: grpc.aio.ServicerContext) -> pb.GetMerchantUserResponse:
        user = await merchants.get_merchant_user(self._ctx, request.brand_id,
                                                 request.merchant_user_id)
        return pb.GetMerchantUserResponse(user=merchant_pb(user))

    async def ListMerchantUsers(self, request: pb.ListMerchantUsersRequest,
                                context: grpc.aio.ServicerContext
                                ) -> pb.ListMerchantUsersResponse:
        users, token = await merchants.list_merchant_users(self._ctx, request.brand_id,
                                                           request.page_size,
                                                           request.page_token)
        return pb.ListMerchantUsersResponse(users=[merchant_pb(u) for u in users],
                                            next_page_token=token)

    async def DisableMerchantUser(self, request: pb.DisableMerchantUserRequest,
                                  context: grpc.aio.ServicerContext
                                  ) -> pb.DisableMerchantUserResponse:
        return await merchants.disable_merchant_user(
            self._ctx, self._idempotent.commit_once(
                "DisableMerchantUser", request, pb.DisableMerchantUserResponse,
                lambda user: pb.DisableMerchantUserResponse(user=merchant_pb(user))),
            request.brand_id, request.merchant_user_id)

    async def IssueMerchantToken(self, request: pb.IssueMerchantTokenRequest,
                                 context: grpc.aio.ServicerContext
                                 ) -> pb.IssueMerchantTokenResponse:
        token, claims = await tokens.issue_merchant_token(self._ctx, request.merchant_user_id,
                                                          request.ttl_seconds)
        return pb.IssueMerchantTokenResponse(token=token, brand_id=claims.brand_id,
                                             expire_time=timestamp(claims.expires_at))

    async def SignInMerchant(self, request: pb.SignInMerchantRequest,
                             context: grpc.aio.ServicerContext) -> pb.SignInMerchantResponse:
        token, claims, user = await tokens.sign_in_merchant(self._ctx, request.login_name,
                                                            request.password)
        return pb.SignInMerchantResponse(token=token, user=merchant_pb(user),
                                         expire_time=timestamp(claims.expires_at))
