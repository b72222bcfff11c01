"""One source of truth for the storefront and console HTTP APIs: each route is registered from
its description, and the OpenAPI document is generated from the same descriptions."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Schema = dict[str, Any]

ERROR_SCHEMA: Schema = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "reason", "message"],
                             "properties": {
                                 "code": {"type": "string", "description": "canonical code"},
                                 "reason": {"type": "string",
                                            "description": "stable UPPER_SNAKE reason"},
                                 "message": {"type": "string"},
                                 "request_id": {"type": "string",
                                                "description": "as in X-Request-Id"},
                                 "details": {"type": "object",
                                             "additionalProperties": {"type": "string"}}}}},
}


def obj(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def string(description: str = "", **extra: Any) -> Schema:
    return {"type": "string", **({"description": description} if description else {}), **extra}


def integer(description: str = "", **extra: Any) -> Schema:
    return {"type": "integer", **({"description": description} if description else {}), **extra}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


PAGE_PARAMS: tuple[tuple[str, Schema, str], ...] = (
    ("page_size", integer(minimum=0, maximum=200), "items per page (default 50, at most 200)"),
    ("page_token", string(), "the next_page_token of the previous page"),
)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: str  # "shopper" | "merchant" | "marketplace" | "receipts" | "none"
    response: Schema
    body: Schema | None = None
    query: tuple[tuple[str, Schema, str], ...] = ()
    idempotent_key: bool = False
    errors: tuple[int, ...] = (400, 401, 403, 404)


def _operation_id(route: Route) -> str:
    path = re.sub(r"[^a-z0-9]+", "_", route.path.lower()).strip("_")
    return f"{route.method.lower()}_{path}"


@dataclass
class RouteTable:
    title: str
    version: str
    routes: list[Route] = field(default_factory=list)

    def add(self, route: Route) -> None:
        self.routes.append(route)

    def register(self, app: web.Application) -> None:
        for route in self.routes:
            app.router.add_route(route.method, route.path, route.handler)

    def openapi(self) -> dict[str, Any]:
        paths: dict[str, dict[str, Any]] = {}
        for route in self.routes:
            parameters: list[dict[str, Any]] = [
                {"name": name, "in": "path", "required": True, "schema": string()}
                for name in re.findall(r"{(\w+)}", route.path)]
            parameters += [{"name": name, "in": "query", "required": False, "schema": schema,
                            "description": description}
                           for name, schema, description in route.query]
            if route.idempotent_key:
                parameters.append({
                    "name": "Idempotency-Key", "in": "header", "required": False,
                    "schema": string(maxLength=128),
                    "description": "repeat a write safely: the same key returns the first "
                                   "answer"})
            operation: dict[str, Any] = {
                "summary": route.summary, "tags": [route.tag],
                "operationId": _operation_id(route),
                "parameters": parameters,
                "responses": {
                    "200": {"description": "OK",
                            "content": {"application/json": {"schema": route.response}}},
                    **{str(code): {"description": "error",
                                   "content": {"application/json": {
                                       "schema": {"$ref": "#/components/schemas/Error"}}}}
                       for code in (*route.errors, 429)},
                },
            }
            if route.auth != "none":
                operation["security"] = [{route.auth: []}]
            if route.body is not None:
                operation["requestBody"] = {"required": True, "content": {
                    "application/json": {"schema": route.body}}}
            paths.setdefault(route.path, {})[route.method.lower()] = operation
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version},
            "paths": paths,
            "components": {
                "schemas": {"Error": ERROR_SCHEMA},
                "securitySchemes": {
                    "shopper": {"type": "http", "scheme": "bearer",
                                "description": "a shopper session token from identity"},
                    "merchant": {"type": "http", "scheme": "bearer",
                                 "description": "a merchant token scoped to one brand"},
                    "marketplace": {"type": "apiKey", "in": "header",
                                    "name": "X-Marketplace-Signature",
                                    "description": "hex HMAC-SHA256 of '<X-Marketplace-"
                                                   "Timestamp>.' + raw body, shared secret"},
                    "receipts": {"type": "apiKey", "in": "header",
                                 "name": "X-Brandclub-Signature",
                                 "description": "hex HMAC-SHA256 of '<X-Brandclub-Timestamp>.' "
                                                "+ raw body, the channel's receipt secret"},
                },
            },
        }
