"""The gateway's HTTP server listens on loopback in development mode (tests, `./dev up`) and
on every interface otherwise, like its gRPC server (HTTP_LISTEN_HOST, GRPC_LISTEN_HOST)."""

from __future__ import annotations

from libs.config import load_settings
from libs.testing import service_settings
from services.gateway.main import start_gateway


def test_http_listen_host_defaults_by_mode() -> None:
    """Development mode: 127.0.0.1 unless HTTP_LISTEN_HOST says otherwise; production:
    every interface."""
    dev = {"BRANDCLUB_ENV": "development"}
    assert load_settings("gateway", dev, database=False).http_listen_host == "127.0.0.1"
    assert load_settings("gateway", {**dev, "HTTP_LISTEN_HOST": "0.0.0.0"},
                         database=False).http_listen_host == "0.0.0.0"
    production = {"REDIS_URL": "redis://:a-real-redis-password-0123456789@redis:6379/0"}
    assert load_settings("gateway", production, database=False).http_listen_host == "0.0.0.0"


async def test_a_development_gateway_serves_http_on_loopback_only(db_url: str,
                                                                  redis_url: str) -> None:
    """Started from its settings alone (as `./dev up` and the e2e stack start it), a
    development gateway's HTTP socket is bound to 127.0.0.1, not to every interface."""
    running = await start_gateway(service_settings("gateway", db_url, redis_url),
                                  http_port=0, grpc_port=0)
    try:
        hosts = {address[0] for address in running.runner.addresses}
        assert hosts == {"127.0.0.1"}
    finally:
        await running.stop(0.2)
