"""SMS (Aliyun SendSms) and WeChat template-message adapters against local fakes of the
providers' HTTP APIs, phones from the real identity vault, credentials sealed at rest, and
the recording sandbox."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import grpc
import pytest
from aiohttp import web

from brandclub.identity.v1 import identity_service_pb2 as ipb
from brandclub.identity.v1 import identity_service_pb2_grpc as igrpc
from brandclub.messaging.v1 import messaging_service_pb2 as pb
from libs.grpc_client import remote_error
from libs.redis import connect_redis
from libs.testing import ContractChannel
from tests.services.messaging.conftest import Env, rid
from tests.services.messaging.shoppers import shopper

SECRET = "aliyun-test-secret"
APP_ID = "wx_app_1"
APP_SECRET = "wechat-test-secret"


def pop_encode(value: str) -> str:
    # As Aliyun documents it: URL-encode UTF-8, then + -> %20, * -> %2A, %7E -> ~.
    return quote(value, safe="").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")


def expected_signature(params: dict[str, str], secret: str) -> str:
    query = "&".join(f"{pop_encode(k)}={pop_encode(params[k])}" for k in sorted(params))
    string_to_sign = "POST&%2F&" + pop_encode(query)
    mac = hmac.new((secret + "&").encode(), string_to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


@dataclass
class FakeProviders:
    url: str = ""
    sms: list[dict[str, str]] = field(default_factory=list)
    sms_answers: list[dict[str, Any]] = field(default_factory=list)
    tokens_issued: int = 0
    wechat: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
async def fake() -> AsyncIterator[FakeProviders]:
    state = FakeProviders()

    async def send_sms(request: web.Request) -> web.Response:
        params = {k: str(v) for k, v in (await request.post()).items()}
        signature = params.pop("Signature")
        if signature != expected_signature(params, SECRET):
            return web.json_response({"Code": "SignatureDoesNotMatch"}, status=400)
        state.sms.append(params)
        if state.sms_answers:
            return web.json_response(state.sms_answers.pop(0))
        return web.json_response({"Code": "OK", "Message": "OK",
                                  "BizId": f"biz-{len(state.sms)}", "RequestId": "r"})

    async def token(request: web.Request) -> web.Response:
        q = request.query
        if (q.get("grant_type"), q.get("appid"), q.get("secret")) != (
                "client_credential", APP_ID, APP_SECRET):
            return web.json_response({"errcode": 40013, "errmsg": "invalid appid"})
        state.tokens_issued += 1
        return web.json_response({"access_token": f"fresh-{state.tokens_issued}",
                                  "expires_in": 7200})

    async def template_send(request: web.Request) -> web.Response:
        if not request.query.get("access_token", "").startswith("fresh-"):
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        state.wechat.append(await request.json())
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": 200228332})

    app = web.Application()
    app.router.add_post("/", send_sms)
    app.router.add_get("/cgi-bin/token", token)
    app.router.add_post("/cgi-bin/message/template/send", template_send)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


async def sms_setup(env: Env, fake: FakeProviders,
                    provider: pb.Provider.ValueType = pb.PROVIDER_ALIYUN_SMS
                    ) -> tuple[str, pb.Template]:
    brand = await env.brand()
    settings = {"sign_name": "Acme"}
    credentials = {}
    if provider == pb.PROVIDER_ALIYUN_SMS:
        settings["endpoint"] = fake.url
        credentials = {"access_key_id": "LTAI-test", "access_key_secret": SECRET}
    await env.messaging.ConfigureChannel(pb.ConfigureChannelRequest(
        request_id=rid(), brand_id=brand, channel=pb.CHANNEL_SMS, provider=provider,
        settings=settings, credentials=credentials))
    template = (await env.messaging.CreateTemplate(pb.CreateTemplateRequest(
        request_id=rid(), template=pb.Template(
            brand_id=brand, channel=pb.CHANNEL_SMS, purpose=pb.PURPOSE_SERVICE, name="code",
            body="{{brand_name}}: your code is {{code}}", provider_template_code="SMS_71390007",
            provider_params={"code": "{{code}}"}, custom_variables=["code"])))).template
    return brand, template


async def send(env: Env, brand: str, account: str, template_id: str,
               **variables: str) -> pb.OutboundMessage:
    return (await env.messaging.SendMessage(pb.SendMessageRequest(
        request_id=rid(), brand_id=brand, account_id=account, template_id=template_id,
        variables=variables))).message


async def get(env: Env, brand: str, message_id: str) -> pb.OutboundMessage:
    return (await env.messaging.GetMessage(pb.GetMessageRequest(
        brand_id=brand, message_id=message_id))).message


async def test_sms_goes_to_aliyun_signed_with_the_vault_phone(env: Env,
                                                              fake: FakeProviders) -> None:
    """SendSms reaches the provider signed, with the vault's phone, and the receipt lands."""
    brand, template = await sms_setup(env, fake)
    account = await shopper(env, "+86 138-1234-5678")
    message = await send(env, brand, account, template.template_id, code="4711")
    await env.dispatch()
    assert len(fake.sms) == 1
    call = fake.sms[0]
    assert (call["Action"], call["Version"], call["PhoneNumbers"], call["SignName"],
            call["TemplateCode"], call["OutId"]) == (
        "SendSms", "2017-05-25", "13812345678", "Acme", "SMS_71390007", message.message_id)
    assert json.loads(call["TemplateParam"]) == {"code": "4711"}
    sent = await get(env, brand, message.message_id)
    assert (sent.status, sent.provider_message_id) == (pb.MESSAGE_STATUS_SENT, "biz-1")
    receipt = await env.messaging.RecordDeliveryReceipt(pb.RecordDeliveryReceiptRequest(
        request_id=rid(), brand_id=brand, channel=pb.CHANNEL_SMS, provider_message_id="biz-1",
        delivered=True))
    assert receipt.message.status == pb.MESSAGE_STATUS_DELIVERED


async def test_sms_flow_control_is_retried_then_sent(env: Env, fake: FakeProviders) -> None:
    """A throttled SendSms is retried after a back-off and then goes out once."""
    brand, template = await sms_setup(env, fake)
    account = await shopper(env, "13900000000")
    fake.sms_answers.append({"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "limit"})
    message = await send(env, brand, account, template.template_id, code="1")
    await env.dispatch()
    waiting = await get(env, brand, message.message_id)
    assert (waiting.status, waiting.reason, waiting.attempts) == (
        pb.MESSAGE_STATUS_QUEUED, "isv.BUSINESS_LIMIT_CONTROL", 1)
    env.clock.now = waiting.not_before_time.ToDatetime(tzinfo=env.clock.now.tzinfo)
    await env.dispatch()
    assert (await get(env, brand, message.message_id)).status == pb.MESSAGE_STATUS_SENT
    assert len(fake.sms) == 2


async def test_member_without_phone_is_suppressed_no_address(env: Env,
                                                           fake: FakeProviders) -> None:
    """A member the vault has no phone for is suppressed with NO_ADDRESS; nothing is sent."""
    brand, template = await sms_setup(env, fake)
    account = await shopper(env)
    message = await send(env, brand, account, template.template_id, code="1")
    await env.dispatch()
    after = await get(env, brand, message.message_id)
    assert (after.status, after.reason) == (pb.MESSAGE_STATUS_SUPPRESSED, "NO_ADDRESS")
    assert fake.sms == []


async def test_credentials_are_sealed_and_never_read_back(env: Env,
                                                          fake: FakeProviders) -> None:
    """The secret is stored encrypted (not in the row's bytes) and no RPC returns it."""
    brand, _ = await sms_setup(env, fake)
    rows = await env.sql("SELECT credentials FROM messaging.channel_configs WHERE brand_id = $1",
                         brand)
    assert SECRET.encode() not in bytes(rows[0]["credentials"])
    listed = await env.messaging.ListChannels(pb.ListChannelsRequest(brand_id=brand))
    assert list(listed.channels[0].credential_names) == ["access_key_id", "access_key_secret"]
    assert SECRET not in str(listed)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.messaging.ConfigureChannel(pb.ConfigureChannelRequest(
            request_id=rid(), brand_id=brand, channel=pb.CHANNEL_SMS,
            provider=pb.PROVIDER_ALIYUN_SMS, settings={"sign_name": "Acme"},
            credentials={"access_key_id": "x"}))
    assert remote_error(caught.value).metadata["field"] == "credentials.access_key_secret"


async def test_wechat_template_message_refreshes_a_stale_token(env: Env,
                                                               fake: FakeProviders) -> None:
    """A stale cached token is replaced once; the template message goes to the linked openid."""
    brand = await env.brand()
    await env.messaging.ConfigureChannel(pb.ConfigureChannelRequest(
        request_id=rid(), brand_id=brand, channel=pb.CHANNEL_WECHAT,
        provider=pb.PROVIDER_WECHAT_OA, settings={"app_id": APP_ID, "endpoint": fake.url},
        credentials={"app_secret": APP_SECRET}))
    template = (await env.messaging.CreateTemplate(pb.CreateTemplateRequest(
        request_id=rid(), template=pb.Template(
            brand_id=brand, channel=pb.CHANNEL_WECHAT, purpose=pb.PURPOSE_SERVICE,
            name="points", body="Points arrived", provider_template_code="TPL_abc",
            provider_params={"first": "{{brand_name}} points", "keyword1": "{{points}}"},
            custom_variables=["points"], link_url="https://m.example.com/points")))).template
    account = await shopper(env)
    async with ContractChannel(env.identity_address, peer="identity") as channel:
        await igrpc.IdentityServiceStub(channel).LinkIdentity(ipb.LinkIdentityRequest(
            request_id=rid(), account_id=account, kind=ipb.IDENTITY_KIND_WECHAT_OA_OPENID,
            scope=APP_ID, external_id="oOPENID123456"))
    redis = connect_redis(env.redis_url)
    await redis.set(f"brandclub:messaging:{{{brand}}}:wechat_token:{APP_ID}", "stale")
    await redis.aclose()
    message = await send(env, brand, account, template.template_id, points="120")
    await env.dispatch()
    assert fake.tokens_issued == 1
    assert fake.wechat == [{"touser": "oOPENID123456", "template_id": "TPL_abc",
                            "url": "https://m.example.com/points",
                            "data": {"first": {"value": "Acme points"},
                                     "keyword1": {"value": "120"}}}]
    sent = await get(env, brand, message.message_id)
    assert (sent.status, sent.provider_message_id) == (pb.MESSAGE_STATUS_SENT, "200228332")


async def test_sandbox_records_masked_instead_of_sending(env: Env,
                                                         fake: FakeProviders) -> None:
    """The sandbox provider records what would be sent with the phone masked."""
    brand, template = await sms_setup(env, fake, provider=pb.PROVIDER_SANDBOX)
    account = await shopper(env, "13812345678")
    await send(env, brand, account, template.template_id, code="99")
    await env.dispatch()
    listed = await env.messaging.ListSandboxDeliveries(pb.ListSandboxDeliveriesRequest(
        brand_id=brand))
    assert [(d.masked_address, d.body, dict(d.params)) for d in listed.deliveries] == [
        ("138****5678", "Acme: your code is 99", {"code": "99"})]
    assert fake.sms == []
