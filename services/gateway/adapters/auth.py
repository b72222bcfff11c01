"""Token verification through the identity service, with a short in-process cache."""

from __future__ import annotations

import grpc

from brandclub.identity.v1 import identity_service_pb2 as identity_pb
from libs.cache import TtlCache
from libs.clock import Clock, system_clock
from libs.errors import Unauthenticated
from libs.grpc_client import remote_error
from libs.protoconv import from_timestamp
from services.gateway.adapters.upstreams import Upstreams
from services.gateway.domain.principal import Principal, PrincipalKind

_KINDS = {identity_pb.PRINCIPAL_KIND_SHOPPER: PrincipalKind.SHOPPER,
          identity_pb.PRINCIPAL_KIND_MERCHANT: PrincipalKind.MERCHANT}


MAX_TOKEN_CHARS = 4096


class TokenVerifier:
    """Verified tokens are cached briefly: a token is immutable and carries its own expiry,
    and the member card read on every page should not cost an extra hop each time. A cached
    principal is never used past its token's expiry, however recently it was verified."""

    def __init__(self, upstreams: Upstreams, *, cache_seconds: float = 30.0,
                 max_entries: int = 50_000, clock: Clock = system_clock) -> None:
        self._upstreams = upstreams
        self._cache: TtlCache[str, Principal] = TtlCache(cache_seconds, max_entries)
        self._clock = clock

    async def verify(self, authorization: str | None) -> Principal:
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthenticated("send 'Authorization: Bearer <token>'", reason="TOKEN_MISSING")
        token = authorization.removeprefix("Bearer ").strip()
        # Tokens are short ASCII; anything else (header bytes that are not UTF-8 decode to
        # lone surrogates, which no protobuf string can carry) is no token of ours.
        if not token.isascii() or len(token) > MAX_TOKEN_CHARS:
            raise Unauthenticated("the bearer token is malformed", reason="TOKEN_MALFORMED")
        cached = self._cache.get(token)
        if cached is not None and cached.expires_at <= self._clock():
            self._cache.forget(token)  # expired since: identity gives the refusal
        return await self._cache.get_or_load(token, lambda: self._ask_identity(token))

    async def _ask_identity(self, token: str) -> Principal:
        try:
            reply = await self._upstreams.identity.VerifyToken(
                identity_pb.VerifyTokenRequest(token=token))
        except grpc.aio.AioRpcError as error:
            raise remote_error(error) from None
        if reply.kind not in _KINDS:
            raise Unauthenticated("token names no known kind of caller", reason="TOKEN_MALFORMED")
        return Principal(_KINDS[reply.kind], reply.account_id, reply.brand_id,
                         from_timestamp(reply.expire_time), reply.merchant_user_id)
