"""The gateway's shared objects on the aiohttp application, set once by main.build_app and read
by every HTTP API module (storefront, console, marketplace, webhooks)."""

from __future__ import annotations

from aiohttp import web

from services.gateway.adapters.auth import TokenVerifier
from services.gateway.adapters.limits import RateLimiter
from services.gateway.adapters.upstreams import Upstreams

UPSTREAMS = web.AppKey("upstreams", Upstreams)
VERIFIER = web.AppKey("verifier", TokenVerifier)
LIMITER = web.AppKey("limiter", RateLimiter)
