"""Every brand-scoped rpc of identity, called as another brand, finds and changes nothing.

Brand A has a phone-match import (with a rejected row), a merchant user and an ISV app's
authorization for one of its shops. Every IdentityService and IsvService rpc whose request
names a brand and one of A's objects (import, merchant user, or an app's authorization by
app key and shop) is sent for brand B with A's ids: each must answer NOT_FOUND. B's lists are
empty, B's matching key is not A's, and A's objects are unchanged afterwards.
`test_every_brand_scoped_rpc_is_swept` keeps the sweep complete as rpcs are added.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor

from brandclub.identity.v1 import identity_service_pb2 as pb
from brandclub.identity.v1 import identity_service_pb2_grpc as pb_grpc
from brandclub.identity.v1 import isv_service_pb2 as isv_pb
from brandclub.identity.v1 import isv_service_pb2_grpc as isv_grpc
from libs import contract
from libs.service import RunningService
from libs.testing import contract_channel, running_service, service_settings
from services.identity.main import compose

SERVICES = ("brandclub.identity.v1.IdentityService", "brandclub.identity.v1.IsvService")
ID_FIELDS = {"import_id", "merchant_user_id", "app_key"}
# Brand-scoped rpcs naming none of A's objects: they create in the brand they name, act for
# an account (matching, the messaging-only phone reveal), or are read below.
OWN_CASES = {"GetPhoneMatchKey", "ListMerchantUsers", "ListAuthorizations"}
OWN_BRAND = {"StartPhoneMatchImport", "CreateMerchantUser", "MatchPhoneForBrand",
             "RevealPhoneForDelivery"}


def rid() -> str:
    return uuid.uuid4().hex


def methods() -> list[MethodDescriptor]:
    return [m for name in SERVICES for m in contract.services()[name].methods]


def fields(method: MethodDescriptor) -> set[str]:
    return {f.name for f in method.input_type.fields}


def test_every_brand_scoped_rpc_is_swept() -> None:
    """Each rpc naming a brand names one of the swept ids, or is listed with its reason."""
    scoped = {m.name for m in methods() if "brand_id" in fields(m)}
    generic = {m.name for m in methods() if "brand_id" in fields(m) and ID_FIELDS & fields(m)}
    assert scoped - generic == OWN_CASES | OWN_BRAND
    assert len(generic) >= 7


@pytest.fixture
async def service(db_url: str, redis_url: str) -> AsyncIterator[RunningService]:
    async with running_service(service_settings("identity", db_url, redis_url),
                               compose) as running:
        yield running


async def test_another_brand_reaches_none_of_a_brands_objects(service: RunningService) -> None:
    """Brand B, given brand A's import, merchant user and app authorization, is answered
    NOT_FOUND by every rpc that takes them; its lists are empty; A is unchanged."""
    brand_a, brand_b = "brd_tenant_a", "brd_tenant_b"
    async with contract_channel(service) as channel:
        identity, isv = pb_grpc.IdentityServiceStub(channel), isv_grpc.IsvServiceStub(channel)
        started = (await identity.StartPhoneMatchImport(pb.StartPhoneMatchImportRequest(
            request_id=rid(), brand_id=brand_a))).phone_import
        await identity.AppendPhoneMatchRows(pb.AppendPhoneMatchRowsRequest(
            request_id=rid(), brand_id=brand_a, import_id=started.import_id, chunk_index=0,
            csv=b"not-a-hash,A1\n"))
        user = (await identity.CreateMerchantUser(pb.CreateMerchantUserRequest(
            request_id=rid(), brand_id=brand_a, login_name="ops-a", display_name="Ops"))).user
        app = await isv.CreateApp(isv_pb.CreateAppRequest(
            request_id=rid(), name="Loyalty", status=isv_pb.APP_STATUS_TEST,
            scopes=["member.read"], redirect_uri="https://isv.example/cb"))
        await isv.AuthorizeApp(isv_pb.AuthorizeAppRequest(
            app_key=app.app.app_key, brand_id=brand_a, shop_id="shp_a",
            redirect_uri="https://isv.example/cb", granted_by="mu_a"))
        before = (await identity.GetPhoneMatchImport(pb.GetPhoneMatchImportRequest(
            brand_id=brand_a, import_id=started.import_id))).phone_import
        values: dict[str, Any] = {
            "request_id": rid(), "brand_id": brand_b, "import_id": started.import_id,
            "merchant_user_id": user.merchant_user_id, "app_key": app.app.app_key,
            "shop_id": "shp_a", "chunk_index": 1, "csv": b"x,y\n"}

        leaks: list[str] = []
        for method in methods():
            if not ("brand_id" in fields(method) and ID_FIELDS & fields(method)):
                continue
            if method.name == "AuthorizeApp":
                continue  # grants B's own shop to the app: nothing of A's is read
            request: Any = message_factory.GetMessageClass(method.input_type)()
            for name, value in values.items():
                if name in fields(method):
                    setattr(request, name, value)
            call = channel.unary_unary(
                contract.full_method_name(method),
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=message_factory.GetMessageClass(
                    method.output_type).FromString)
            try:
                await call(request, timeout=10)
                leaks.append(f"{method.name} with A's ids: OK")
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    leaks.append(f"{method.name}: {error.code().name} {error.details()}")
        assert not leaks, "\n".join(leaks)

        assert list((await identity.ListMerchantUsers(pb.ListMerchantUsersRequest(
            brand_id=brand_b))).users) == []
        assert list((await isv.ListAuthorizations(isv_pb.ListAuthorizationsRequest(
            brand_id=brand_b, include_revoked=True))).authorizations) == []
        key_a, key_b = [(await identity.GetPhoneMatchKey(pb.GetPhoneMatchKeyRequest(
            brand_id=b))).key_base64 for b in (brand_a, brand_b)]
        assert base64.b64decode(key_a) != base64.b64decode(key_b)
        after = (await identity.GetPhoneMatchImport(pb.GetPhoneMatchImportRequest(
            brand_id=brand_a, import_id=started.import_id))).phone_import
        assert after == before
        still = (await identity.GetMerchantUser(pb.GetMerchantUserRequest(
            brand_id=brand_a, merchant_user_id=user.merchant_user_id))).user
        assert not still.disabled
        listed = (await isv.ListAuthorizations(isv_pb.ListAuthorizationsRequest(
            brand_id=brand_a))).authorizations
        assert [(a.shop_id, a.HasField("revoke_time")) for a in listed] == [("shp_a", False)]
