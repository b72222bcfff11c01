"""Identity over gRPC against real PostgreSQL: linked identities, the phone vault, merchant
tokens."""

from __future__ import annotations

import base64
import uuid

import asyncpg
import grpc
import pytest

from brandclub.identity.v1 import identity_service_pb2 as pb
from brandclub.identity.v1 import identity_service_pb2_grpc as pb_grpc
from libs.grpc_client import remote_error
from services.identity.domain.phones import PhoneVault, mask_phone, normalise_phone


def rid() -> str:
    return uuid.uuid4().hex


async def account(identity: pb_grpc.IdentityServiceStub, pin: str) -> str:
    reply = await identity.EnsureAccount(pb.EnsureAccountRequest(
        request_id=rid(), marketplace_account_id=pin))
    return reply.account.account_id


async def failure(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_link_refuses_identity_linked_to_another_account(
        identity: pb_grpc.IdentityServiceStub) -> None:
    """An openid linked to one account cannot be linked to another; it is never moved."""
    alice, bob = await account(identity, "alice"), await account(identity, "bob")
    linked = await identity.LinkIdentity(pb.LinkIdentityRequest(
        request_id=rid(), account_id=alice, kind=pb.IDENTITY_KIND_WECHAT_MINI_OPENID,
        scope="wxapp1", external_id="openid-1"))
    assert linked.linked
    error = await failure(identity.LinkIdentity(pb.LinkIdentityRequest(
        request_id=rid(), account_id=bob, kind=pb.IDENTITY_KIND_WECHAT_MINI_OPENID,
        scope="wxapp1", external_id="openid-1")))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert remote_error(error).reason == "IDENTITY_LINKED_ELSEWHERE"
    resolved = await identity.ResolveIdentity(pb.ResolveIdentityRequest(
        kind=pb.IDENTITY_KIND_WECHAT_MINI_OPENID, scope="wxapp1", external_id="openid-1"))
    assert resolved.account.account_id == alice
    again = await identity.LinkIdentity(pb.LinkIdentityRequest(
        request_id=rid(), account_id=alice, kind=pb.IDENTITY_KIND_WECHAT_MINI_OPENID,
        scope="wxapp1", external_id="openid-1"))
    assert not again.linked


async def test_linked_identities_page_and_filter(identity: pb_grpc.IdentityServiceStub) -> None:
    """Linked identities come in pages, oldest link first, each once; kind and scope pick
    one; a page token is refused for another account or other filters."""
    alice, bob = await account(identity, "alice"), await account(identity, "bob")
    linked = [f"crm-{n}" for n in range(5)]
    for n, external in enumerate(linked):
        await identity.LinkIdentity(pb.LinkIdentityRequest(
            request_id=rid(), account_id=alice, kind=pb.IDENTITY_KIND_BRAND_CRM_MEMBER_ID,
            scope=f"brd_{n}", external_id=external))
    await identity.LinkIdentity(pb.LinkIdentityRequest(
        request_id=rid(), account_id=alice, kind=pb.IDENTITY_KIND_WECHAT_OA_OPENID,
        scope="wxoa", external_id="oa-1"))
    seen: list[str] = []
    token, pages = "", 0
    while True:
        page = await identity.ListLinkedIdentities(pb.ListLinkedIdentitiesRequest(
            account_id=alice, page_size=4, page_token=token))
        seen += [i.external_id for i in page.identities]
        pages, token = pages + 1, page.next_page_token
        if not token:
            break
        first_token = token
    assert seen == [*linked, "oa-1"] and pages == 2
    only = await identity.ListLinkedIdentities(pb.ListLinkedIdentitiesRequest(
        account_id=alice, kind=pb.IDENTITY_KIND_WECHAT_OA_OPENID, scope="wxoa"))
    assert [i.external_id for i in only.identities] == ["oa-1"] and not only.next_page_token
    crm = await identity.ListLinkedIdentities(pb.ListLinkedIdentitiesRequest(
        account_id=alice, kind=pb.IDENTITY_KIND_BRAND_CRM_MEMBER_ID))
    assert [i.external_id for i in crm.identities] == linked
    for other in (pb.ListLinkedIdentitiesRequest(account_id=bob, page_token=first_token),
                  pb.ListLinkedIdentitiesRequest(account_id=alice, page_token=first_token,
                                                 kind=pb.IDENTITY_KIND_BRAND_CRM_MEMBER_ID)):
        error = await failure(identity.ListLinkedIdentities(other))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert remote_error(error).reason == "PAGE_TOKEN_INVALID"


async def test_unlink_is_recorded_and_frees_the_identity(
        identity: pb_grpc.IdentityServiceStub) -> None:
    """Unlinking removes the link, records it in the history, and lets another account link."""
    alice, bob = await account(identity, "alice"), await account(identity, "bob")
    for kind, scope, external in ((pb.IDENTITY_KIND_WECHAT_UNIONID, "", "union-1"),
                                  (pb.IDENTITY_KIND_WECHAT_OA_OPENID, "wxoa", "oa-1")):
        await identity.LinkIdentity(pb.LinkIdentityRequest(
            request_id=rid(), account_id=alice, kind=kind, scope=scope, external_id=external))
    await identity.UnlinkIdentity(pb.UnlinkIdentityRequest(
        request_id=rid(), account_id=alice, kind=pb.IDENTITY_KIND_WECHAT_UNIONID,
        external_id="union-1", reason="user_request"))
    remaining = (await identity.ListLinkedIdentities(
        pb.ListLinkedIdentitiesRequest(account_id=alice))).identities
    assert [i.external_id for i in remaining] == ["oa-1"]
    history = (await identity.ListIdentityLinkHistory(
        pb.ListIdentityLinkHistoryRequest(account_id=alice))).entries
    assert [(e.external_id, e.action) for e in history] == [
        ("union-1", pb.LINK_ACTION_UNLINKED), ("oa-1", pb.LINK_ACTION_LINKED),
        ("union-1", pb.LINK_ACTION_LINKED)]
    assert history[0].reason == "user_request"
    moved = await identity.LinkIdentity(pb.LinkIdentityRequest(
        request_id=rid(), account_id=bob, kind=pb.IDENTITY_KIND_WECHAT_UNIONID,
        external_id="union-1"))
    assert moved.identity.account_id == bob


async def test_link_validates_kind_and_scope(identity: pb_grpc.IdentityServiceStub) -> None:
    """A link without a kind, or an openid without its app id scope, names the bad field."""
    alice = await account(identity, "alice")
    error = await failure(identity.LinkIdentity(pb.LinkIdentityRequest(
        request_id=rid(), account_id=alice, external_id="x")))
    assert remote_error(error).metadata["field"] == "kind"
    error = await failure(identity.LinkIdentity(pb.LinkIdentityRequest(
        request_id=rid(), account_id=alice, kind=pb.IDENTITY_KIND_BRAND_CRM_MEMBER_ID,
        external_id="crm-1")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert remote_error(error).metadata["field"] == "scope"


async def test_phone_is_encrypted_at_rest_and_revealed_only_for_delivery(
        identity: pb_grpc.IdentityServiceStub, db_url: str) -> None:
    """The vault holds ciphertext with a key version; the reveal gives E.164 and is audited."""
    alice = await account(identity, "alice")
    stored = await identity.StorePhone(pb.StorePhoneRequest(
        request_id=rid(), account_id=alice, phone="138-1234-5678"))
    assert stored.changed and stored.masked_phone == "+86 138****5678"
    again = await identity.StorePhone(pb.StorePhoneRequest(
        request_id=rid(), account_id=alice, phone="+86 13812345678"))
    assert not again.changed
    conn = await asyncpg.connect(db_url)
    try:
        row = await conn.fetchrow("SELECT * FROM identity.phone_vault WHERE account_id = $1",
                                  alice)
        assert row["key_version"] == "dev"
        assert b"13812345678" not in bytes(row["ciphertext"])
        revealed = await identity.RevealPhoneForDelivery(pb.RevealPhoneForDeliveryRequest(
            account_id=alice, brand_id="brd_1", purpose=pb.REVEAL_PURPOSE_SMS_DELIVERY,
            message_id="msg_1"))
        assert revealed.phone_e164 == "+8613812345678"
        audit = await conn.fetch("SELECT brand_id, purpose, message_id FROM "
                                 "identity.phone_reveals WHERE account_id = $1", alice)
        assert [tuple(r) for r in audit] == [("brd_1", "sms_delivery", "msg_1")]
    finally:
        await conn.close()
    error = await failure(identity.RevealPhoneForDelivery(pb.RevealPhoneForDeliveryRequest(
        account_id=alice, brand_id="brd_1")))
    assert remote_error(error).metadata["field"] == "purpose"


async def test_bad_phone_and_missing_phone_are_refused(
        identity: pb_grpc.IdentityServiceStub) -> None:
    """An unparseable phone is INVALID_ARGUMENT on field phone; revealing none is refused."""
    alice = await account(identity, "alice")
    error = await failure(identity.StorePhone(pb.StorePhoneRequest(
        request_id=rid(), account_id=alice, phone="12345")))
    assert remote_error(error).reason == "PHONE_INVALID"
    assert remote_error(error).metadata["field"] == "phone"
    error = await failure(identity.RevealPhoneForDelivery(pb.RevealPhoneForDeliveryRequest(
        account_id=alice, brand_id="brd_1", purpose=pb.REVEAL_PURPOSE_SMS_DELIVERY)))
    assert remote_error(error).reason == "PHONE_NOT_ON_FILE"


def test_phone_normalisation_and_masking() -> None:
    """Common notations normalise to E.164; non-mobile Chinese numbers are refused."""
    assert normalise_phone("13812345678") == "+8613812345678"
    assert normalise_phone("0086 138 1234 5678") == "+8613812345678"
    assert normalise_phone("8613812345678") == "+8613812345678"
    assert normalise_phone("+1 (415) 555-0100") == "+14155550100"
    assert mask_phone("+14155550100") == "+14****0100"
    for bad in ("+8612812345678", "abc", "+0123"):
        with pytest.raises(Exception, match="phone"):
            normalise_phone(bad)


def test_vault_key_rotation_opens_old_and_seals_with_new() -> None:
    """After rotation the new key seals while the old one still opens older ciphertexts;
    a ciphertext moved to another account fails authentication."""
    old_key, new_key = b"o" * 32, b"n" * 32
    before = PhoneVault({"k1": old_key}, b"p" * 32)
    sealed = before.seal("acc_1", "+8613812345678")
    after = PhoneVault({"k2": new_key, "k1": old_key}, b"p" * 32)
    assert after.open("acc_1", sealed) == "+8613812345678"
    assert after.seal("acc_1", "+8613812345678").key_version == "k2"
    with pytest.raises(Exception, match="authentication"):
        after.open("acc_2", sealed)
    gone = PhoneVault({"k2": new_key}, b"p" * 32)
    with pytest.raises(Exception, match="no longer"):
        gone.open("acc_1", sealed)


async def test_merchant_token_is_scoped_to_its_brand(
        identity: pb_grpc.IdentityServiceStub) -> None:
    """A merchant token verifies as MERCHANT of its brand; disabling the user revokes it."""
    user = (await identity.CreateMerchantUser(pb.CreateMerchantUserRequest(
        request_id=rid(), brand_id="brd_a", login_name="ops@a", display_name="Ops A",
        password="correct horse battery"))).user
    issued = await identity.IssueMerchantToken(pb.IssueMerchantTokenRequest(
        merchant_user_id=user.merchant_user_id))
    verified = await identity.VerifyToken(pb.VerifyTokenRequest(token=issued.token))
    assert (verified.kind, verified.brand_id, verified.merchant_user_id, verified.account_id) == (
        pb.PRINCIPAL_KIND_MERCHANT, "brd_a", user.merchant_user_id, "")
    signed_in = await identity.SignInMerchant(pb.SignInMerchantRequest(
        login_name="OPS@a", password="correct horse battery"))
    assert signed_in.user.brand_id == "brd_a"
    error = await failure(identity.SignInMerchant(pb.SignInMerchantRequest(
        login_name="ops@a", password="wrong password!")))
    assert remote_error(error).reason == "MERCHANT_CREDENTIALS_INVALID"
    error = await failure(identity.GetMerchantUser(pb.GetMerchantUserRequest(
        brand_id="brd_b", merchant_user_id=user.merchant_user_id)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    await identity.DisableMerchantUser(pb.DisableMerchantUserRequest(
        request_id=rid(), brand_id="brd_a", merchant_user_id=user.merchant_user_id))
    error = await failure(identity.VerifyToken(pb.VerifyTokenRequest(token=issued.token)))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert remote_error(error).reason == "MERCHANT_USER_DISABLED"


async def test_merchant_login_names_are_unique(identity: pb_grpc.IdentityServiceStub) -> None:
    """A second user with a taken login name is ALREADY_EXISTS; a short password is refused."""
    await identity.CreateMerchantUser(pb.CreateMerchantUserRequest(
        request_id=rid(), brand_id="brd_a", login_name="owner", display_name="Owner"))
    error = await failure(identity.CreateMerchantUser(pb.CreateMerchantUserRequest(
        request_id=rid(), brand_id="brd_b", login_name="owner", display_name="Other")))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    error = await failure(identity.CreateMerchantUser(pb.CreateMerchantUserRequest(
        request_id=rid(), brand_id="brd_b", login_name="other", display_name="Other",
        password="short")))
    assert remote_error(error).metadata["field"] == "password"


async def test_reseal_moves_phones_to_the_new_key(identity: pb_grpc.IdentityServiceStub,
                                                  db_url: str) -> None:
    """After a rotation the re-seal pass re-encrypts older rows under the new key, and the
    number still opens."""
    from libs.db import Database
    from services.identity.domain.tokens import TokenCodec
    from services.identity.main import phone_secrets
    from services.identity.settings import load_identity_settings
    from services.identity.usecases.context import IdentityContext
    from services.identity.usecases.phones import reseal_phones, reveal_phone_for_delivery

    alice = await account(identity, "alice")
    await identity.StorePhone(pb.StorePhoneRequest(request_id=rid(), account_id=alice,
                                                   phone="13812345678"))
    dev_mode = {"BRANDCLUB_ENV": "development"}
    old, matcher = phone_secrets(load_identity_settings(dev_mode))
    dev_key = base64.b64encode(b"brandclub-dev-phone-vault-key-32").decode()
    new_key = base64.b64encode(b"n" * 32).decode()
    rotated, _ = phone_secrets(load_identity_settings(
        {**dev_mode, "PHONE_VAULT_KEYS": f"k2:{new_key},dev:{dev_key}"}))
    db = await Database.connect(db_url, "identity", min_size=1, max_size=2)
    codec = TokenCodec({"k1": b"k" * 32})
    before, after = (IdentityContext(db, codec, vault, matcher) for vault in (old, rotated))
    try:
        assert await reseal_phones(after) == 1
        assert await reseal_phones(after) == 0
        async with db.connection() as conn:
            assert await conn.fetchval("SELECT key_version FROM phone_vault") == "k2"
        phone = await reveal_phone_for_delivery(after, alice, "brd_1", "sms_delivery", "")
        assert phone == "+8613812345678"
        with pytest.raises(Exception, match="no longer configured"):
            await reveal_phone_for_delivery(before, alice, "brd_1", "sms_delivery", "")
    finally:
        await db.close()


def test_token_keys_rotate() -> None:
    """A token signed with the old key still verifies once a new key signs, and stops
    verifying when the old key is removed."""
    from datetime import UTC, datetime, timedelta

    from services.identity.domain.tokens import Kind, TokenCodec

    now = datetime.now(UTC)
    old = TokenCodec({"k1": b"a" * 32})
    token, _ = old.issue(Kind.MERCHANT, "mus_1", now=now, ttl=timedelta(hours=1),
                         brand_id="brd_1")
    rotated = TokenCodec({"k2": b"b" * 32, "k1": b"a" * 32})
    assert rotated.verify(token, now=now).brand_id == "brd_1"
    assert rotated.issue(Kind.SHOPPER, "acc_1", now=now, ttl=timedelta(hours=1))[0].startswith(
        "v1.k2.")
    with pytest.raises(Exception, match="not trusted"):
        TokenCodec({"k2": b"b" * 32}).verify(token, now=now)
