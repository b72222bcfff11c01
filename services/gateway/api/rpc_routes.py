"""Console routes that each forward to one RPC: `rpc_route` builds their Route (added to the
RouteTable like any other route, api/routes.py), and the query helpers they share.

A route acts on the merchant token's brand (set on the request, or on its `nested` message),
never on one named in the request; path parameters, paging and, for writes, an idempotency key
(`<brand>:<merchant user>:<Idempotency-Key>`) are filled in; the reply goes back in the proto3
JSON mapping. Each route is added to the RouteTable with its OpenAPI description.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from aiohttp import web
from google.protobuf.message import Message

from libs.errors import InvalidArgument
from libs.grpc_client import remote_error
from services.gateway.api.app_keys import UPSTREAMS, VERIFIER
from services.gateway.api.http_common import json_body, page_query, request_id
from services.gateway.api.proto_body import (
    body_into,
    body_onto,
    proto_json,
    read_body,
    require_fields,
)
from services.gateway.api.routes import PAGE_PARAMS, Handler, Route, Schema, string

TAG = "console"
CONSOLE_ERRORS = (400, 401, 403, 404, 409)

# Sets request fields the route computes (from the query, a converted path parameter, ...).
Extra = Callable[[Any, web.Request], None]


async def merchant_of(request: web.Request) -> tuple[str, str]:
    """The brand and merchant user of the request's merchant token."""
    principal = await request.app[VERIFIER].verify(request.headers.get("Authorization"))
    return principal.require_merchant(), principal.merchant_user_id


def contract_schema(name: str) -> Schema:
    return {"type": "object", "description": f"the contract's {name} in the proto3 JSON mapping "
                                             "(field names as in protos/)"}


async def _body_onto_request(request: web.Request, message: Message, *, nested: str,
                             checked: bool, not_in_body: tuple[str, ...],
                             required: tuple[str, ...]) -> None:
    """`checked`: the body is walked against the contract (a bad one is a 400 naming the
    place), path parameters may not be sent and `required` fields must be set; otherwise
    protobuf's parser alone judges it."""
    if checked:
        payload = await read_body(request)
        forbidden = ("request_id", *(() if nested else ("brand_id",)), *not_in_body)
        body_onto(payload, message, forbidden=forbidden, nested=nested)
        require_fields(message, required, payload)
        return
    payload = await json_body(request)
    inner = payload.get(nested) if nested else None
    if isinstance(inner, dict) and "brand_id" in inner:
        raise InvalidArgument("brand_id comes from the token and may not be sent",
                              field=f"{nested}.brand_id", reason="FIELD_NOT_ALLOWED")
    body_into(payload, message,
              forbidden=("request_id",) if nested else ("request_id", "brand_id"))


def rpc_handler(service: str, rpc: str, request_type: type[Message], *, nested: str = "",
                body: bool = False, checked: bool = True, required: tuple[str, ...] = (),
                page: bool = False, write: bool = False, path: tuple[str, ...] = (),
                extra: Extra | None = None, converted: tuple[str, ...] = ()) -> Handler:
    """A console route over one RPC of `service` (an attribute of the gateway's Upstreams):
    `path` parameters are copied onto the request as they are; `converted` ones are set by
    `extra`; with `checked`, neither may be sent in the body."""

    async def handler(request: web.Request) -> web.StreamResponse:
        brand_id, merchant_user_id = await merchant_of(request)
        message = request_type()
        if body:
            await _body_onto_request(request, message, nested=nested, checked=checked,
                                     not_in_body=(*path, *converted), required=required)
        target: Any = getattr(message, nested) if nested else message
        target.brand_id = brand_id
        for name in path:
            setattr(message, name, request.match_info[name])
        if page:
            size, token = page_query(request)
            message.page_size, message.page_token = size, token  # type: ignore[attr-defined]
        if write:
            message.request_id = (  # type: ignore[attr-defined]
                f"{brand_id}:{merchant_user_id}:{request_id(request)}")
        if extra is not None:
            extra(message, request)
        stub = getattr(request.app[UPSTREAMS], service)
        try:
            reply = await getattr(stub, rpc)(message)
        except grpc.aio.AioRpcError as error:
            raise remote_error(error) from None
        return web.json_response(proto_json(reply))

    return handler


def rpc_route(method: str, url: str, summary: str, service: str, rpc: str,
              request_type: type[Message], response: str, *, body_schema: Schema | None = None,
              query: tuple[tuple[str, Schema, str], ...] = (), **options: Any) -> Route:
    """The Route of a console endpoint that forwards to one RPC, documented from the same
    options: a body when `body_schema` is given, paging parameters with `page`, the
    Idempotency-Key header with `write`. Registered like every route: `table.add(...)`."""
    handler = rpc_handler(service, rpc, request_type, body=body_schema is not None, **options)
    return Route(method, url, handler, summary, TAG, "merchant", contract_schema(response),
                 body=body_schema, query=(*(PAGE_PARAMS if options.get("page") else ()), *query),
                 idempotent_key=bool(options.get("write")), errors=CONSOLE_ERRORS)


def enum_choices(prefix: str, items: Any) -> dict[str, int]:
    """An enum's values by short lower-case name (CAMPAIGN_STATUS_DRAFT -> draft), no zero."""
    return {name.removeprefix(prefix).lower(): number for name, number in items if number}


def enum_query(name: str, prefix: str, items: Any) -> Extra:
    """An optional filter given in the query by its short name (e.g. status=draft); an unknown
    name is a 400 listing the choices."""
    choices = enum_choices(prefix, items)

    def extra(message: Any, request: web.Request) -> None:
        raw = request.query.get(name, "").strip().lower().removeprefix(prefix.lower())
        if not raw:
            return
        if raw not in choices:
            raise InvalidArgument(f"{name} must be one of {', '.join(sorted(choices))}",
                                  field=name, reason="FIELD_ENUM_INVALID")
        setattr(message, name, choices[raw])
    return extra


def enum_param(name: str, prefix: str, items: Any) -> tuple[str, Schema, str]:
    """The OpenAPI query parameter of an `enum_query` filter."""
    return (name, string(enum=sorted(enum_choices(prefix, items))),
            f"only items with this {name}")
