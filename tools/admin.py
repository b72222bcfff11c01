"""Operator CLI: `./dev admin <command> ...`. Every command prints JSON, so an ISV's test set-up
is scriptable. Services are found by the same variables the suite uses (IDENTITY_ADDR,
MEMBERSHIP_ADDR, REDIS_URL, ...; an address not set follows PORT_OFFSET as under `./dev up`,
which prints them). It calls as `operator` over mutual TLS:
TLS_DIR names the operator certificate, by default the one `./dev up` issued
(`$DATA_DIR/tls/operator`, DATA_DIR defaulting to .data).

  create-brand     --name N [--mode connected|non_connected] [--time-zone Z]
  create-shop      --brand-id B --name N
  create-merchant  --brand-id B --login L [--display-name D] [--password P] [--ttl-seconds S]
  create-app       --name N --redirect-uri U --scopes a,b [--status test|production]
                   [--calls-per-minute N] [--calls-per-day N]
  set-app-status   --app-key K --status test|production|suspended
  authorize        --app-key K --shop-id S [--scopes a,b]   (grant + code exchange in one step)
  audit            [--app-key K] [--count N]                 (latest open-platform calls)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import grpc

from brandclub.identity.v1 import identity_service_pb2 as identity_pb
from brandclub.identity.v1 import identity_service_pb2_grpc as identity_grpc
from brandclub.identity.v1 import isv_service_pb2 as isv_pb
from brandclub.identity.v1 import isv_service_pb2_grpc as isv_grpc
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from libs.config import ConfigError, Settings, load_settings, port_offset
from libs.grpc_client import remote_error
from libs.protoconv import from_timestamp
from libs.redis import connect_redis
from libs.tls import TlsError, TlsFiles, TlsIdentity, load_identity, secure_channel
from tools.devstack import service_ports

_MODES = {"connected": membership_pb.PROGRAM_MODE_CONNECTED,
          "non_connected": membership_pb.PROGRAM_MODE_NON_CONNECTED}
_APP_STATUSES = {"test": isv_pb.APP_STATUS_TEST, "production": isv_pb.APP_STATUS_PRODUCTION,
                 "suspended": isv_pb.APP_STATUS_SUSPENDED}
_APP_STATUS_NAMES = {value: key for key, value in _APP_STATUSES.items()}
TIMEOUT = 15.0
ROOT = Path(__file__).resolve().parent.parent


def environment(source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables the CLI reads: the shell's, and for every service whose `<NAME>_ADDR` is
    not set, its address under `./dev up` moved by PORT_OFFSET exactly as tools/devstack.py
    moves it, so `PORT_OFFSET=100 ./dev admin ...` talks to `PORT_OFFSET=100 ./dev up`."""
    env = dict(os.environ if source is None else source)
    for name, port in service_ports(port_offset(env)).items():
        env.setdefault(f"{name.upper()}_ADDR", f"127.0.0.1:{port}")
    return env


def operator_identity(settings: Settings) -> TlsIdentity:
    """The operator's certificate: TLS_DIR (or TLS_*_FILE), else the one `./dev up` issued."""
    files = settings.tls_files
    if not files.cert_file:
        data_dir = Path(os.environ.get("DATA_DIR", ROOT / ".data"))
        files = TlsFiles.in_dir(data_dir / "tls" / "operator")
    return load_identity(files)


def _channel(settings: Settings, service: str) -> grpc.aio.Channel:
    return secure_channel(settings.address_of(service), operator_identity(settings), peer=service)


def _request_id(args: argparse.Namespace) -> str:
    return str(args.request_id or f"admin:{uuid.uuid4().hex}")


def _scopes(raw: str) -> list[str]:
    return [scope.strip() for scope in raw.replace(" ", ",").split(",") if scope.strip()]


def _app_json(app: isv_pb.App) -> dict[str, Any]:
    return {"app_key": app.app_key, "name": app.name,
            "status": _APP_STATUS_NAMES.get(app.status, "unspecified"),
            "scopes": list(app.scopes), "redirect_uri": app.redirect_uri,
            "calls_per_minute": app.calls_per_minute, "calls_per_day": app.calls_per_day}


async def create_brand(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    async with _channel(settings, "membership") as channel:
        brand = (await membership_grpc.MembershipServiceStub(channel).CreateBrand(
            membership_pb.CreateBrandRequest(
                request_id=_request_id(args), display_name=args.name, mode=_MODES[args.mode],
                time_zone=args.time_zone), timeout=TIMEOUT)).brand
    return {"brand_id": brand.brand_id, "name": brand.display_name, "mode": args.mode,
            "time_zone": brand.time_zone}


async def create_shop(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    async with _channel(settings, "membership") as channel:
        shop = (await membership_grpc.MembershipServiceStub(channel).CreateShop(
            membership_pb.CreateShopRequest(request_id=_request_id(args), brand_id=args.brand_id,
                                            display_name=args.name), timeout=TIMEOUT)).shop
    return {"shop_id": shop.shop_id, "brand_id": shop.brand_id, "name": shop.display_name}


async def create_merchant(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    async with _channel(settings, "identity") as channel:
        identity = identity_grpc.IdentityServiceStub(channel)
        user = (await identity.CreateMerchantUser(identity_pb.CreateMerchantUserRequest(
            request_id=_request_id(args), brand_id=args.brand_id, login_name=args.login,
            display_name=args.display_name or args.login, password=args.password or ""),
            timeout=TIMEOUT)).user
        token = await identity.IssueMerchantToken(identity_pb.IssueMerchantTokenRequest(
            merchant_user_id=user.merchant_user_id, ttl_seconds=args.ttl_seconds),
            timeout=TIMEOUT)
    return {"merchant_user_id": user.merchant_user_id, "brand_id": args.brand_id,
            "login_name": args.login, "token": token.token,
            "token_expires_at": from_timestamp(token.expire_time).isoformat()}


async def create_app(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    async with _channel(settings, "identity") as channel:
        reply = await isv_grpc.IsvServiceStub(channel).CreateApp(isv_pb.CreateAppRequest(
            request_id=_request_id(args), name=args.name, status=_APP_STATUSES[args.status],
            scopes=_scopes(args.scopes), redirect_uri=args.redirect_uri,
            calls_per_minute=args.calls_per_minute, calls_per_day=args.calls_per_day),
            timeout=TIMEOUT)
    return {**_app_json(reply.app), "app_secret": reply.app_secret}


async def set_app_status(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    async with _channel(settings, "identity") as channel:
        reply = await isv_grpc.IsvServiceStub(channel).SetAppStatus(isv_pb.SetAppStatusRequest(
            request_id=_request_id(args), app_key=args.app_key,
            status=_APP_STATUSES[args.status]), timeout=TIMEOUT)
    return _app_json(reply.app)


async def authorize(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """What a merchant and the app do through /oauth2, in one operator step (test set-ups)."""
    async with _channel(settings, "identity") as identity_channel, \
            _channel(settings, "membership") as membership_channel:
        shop = (await membership_grpc.MembershipServiceStub(membership_channel).GetShop(
            membership_pb.GetShopRequest(shop_id=args.shop_id), timeout=TIMEOUT)).shop
        isv = isv_grpc.IsvServiceStub(identity_channel)
        signing = await isv.GetAppSigningKey(isv_pb.GetAppSigningKeyRequest(
            app_key=args.app_key), timeout=TIMEOUT)
        code = await isv.AuthorizeApp(isv_pb.AuthorizeAppRequest(
            app_key=args.app_key, brand_id=shop.brand_id, shop_id=shop.shop_id,
            scopes=_scopes(args.scopes), granted_by="operator"), timeout=TIMEOUT)
        grant = (await isv.ExchangeCode(isv_pb.ExchangeCodeRequest(
            app_key=args.app_key, app_secret=signing.app_secret, code=code.code),
            timeout=TIMEOUT)).grant
    return {"app_key": args.app_key, "shop_id": grant.shop_id, "brand_id": grant.brand_id,
            "access_token": grant.access_token, "refresh_token": grant.refresh_token,
            "expires_in": grant.expires_in_seconds, "scope": " ".join(grant.scopes)}


async def audit(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    from services.gateway.adapters.limits import AUDIT_STREAM

    redis = connect_redis(settings.redis_url)
    try:
        entries: list[tuple[bytes, dict[bytes, bytes]]] = await redis.xrevrange(  # type: ignore[assignment]
            AUDIT_STREAM, count=max(1, min(args.count, 10_000)) * (20 if args.app_key else 1))
    finally:
        await redis.aclose()
    calls = []
    for entry_id, fields in entries:
        call = {k.decode(): v.decode() for k, v in fields.items()}
        if args.app_key and call.get("app_key") != args.app_key:
            continue
        calls.append({"id": entry_id.decode(), **call})
        if len(calls) >= args.count:
            break
    return {"calls": calls}


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], Awaitable[dict[str, Any]]]] = {
    "create-brand": create_brand, "create-shop": create_shop,
    "create-merchant": create_merchant, "create-app": create_app,
    "set-app-status": set_app_status, "authorize": authorize, "audit": audit,
}


async def _run(command: Callable[[Settings, argparse.Namespace], Awaitable[dict[str, Any]]],
               settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    return await command(settings, args)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="./dev admin", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = root.add_subparsers(dest="command", required=True)

    def command(name: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name)
        sub.add_argument("--request-id", default="",
                         help="idempotency key: the same key repeats the first answer")
        return sub

    brand = command("create-brand")
    brand.add_argument("--name", required=True)
    brand.add_argument("--mode", choices=sorted(_MODES), default="non_connected")
    brand.add_argument("--time-zone", default="Asia/Shanghai")
    shop = command("create-shop")
    shop.add_argument("--brand-id", required=True)
    shop.add_argument("--name", required=True)
    merchant = command("create-merchant")
    merchant.add_argument("--brand-id", required=True)
    merchant.add_argument("--login", required=True)
    merchant.add_argument("--display-name", default="")
    merchant.add_argument("--password", default="")
    merchant.add_argument("--ttl-seconds", type=int, default=0)
    app = command("create-app")
    app.add_argument("--name", required=True)
    app.add_argument("--redirect-uri", required=True)
    app.add_argument("--scopes", required=True, help="comma separated, e.g. member.read")
    app.add_argument("--status", choices=["test", "production"], default="test")
    app.add_argument("--calls-per-minute", type=int, default=0)
    app.add_argument("--calls-per-day", type=int, default=0)
    status = command("set-app-status")
    status.add_argument("--app-key", required=True)
    status.add_argument("--status", choices=sorted(_APP_STATUSES), required=True)
    grant = command("authorize")
    grant.add_argument("--app-key", required=True)
    grant.add_argument("--shop-id", required=True)
    grant.add_argument("--scopes", default="", help="default: every scope of the app")
    reader = command("audit")
    reader.add_argument("--app-key", default="")
    reader.add_argument("--count", type=int, default=20)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        # The CLI opens no database: it calls identity and membership and reads Redis.
        settings = load_settings("gateway", environment(), database=False)
        result = asyncio.run(_run(COMMANDS[args.command], settings, args))
    except (ConfigError, TlsError) as exc:
        print(json.dumps({"error": {"reason": "CONFIG_INVALID", "message": str(exc)}}),
              file=sys.stderr)
        return 2
    except grpc.aio.AioRpcError as rpc_error:
        error = remote_error(rpc_error)
        print(json.dumps({"error": {"code": error.code.name, "reason": error.reason,
                                    "message": error.message, "details": error.metadata}},
                         ensure_ascii=False), file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
