"""Echo servers, the floors every service scenario is compared with.

Bare (the default): a grpc.aio unary echo, no protobuf, no interceptors, no database: bytes in,
the same bytes out. `--framework`: the same echo as a method of a `libs.grpc_server.ServiceHost`
(authorization, the request interceptor with its access log, deadline and error mapping,
protobuf messages), logging as a service does and run as a service is run: the difference
between the two servers' CPU per call is the framework's tax on every call of every service.
With `--tls-dir` both speak mutual TLS like the services do (libs/tls.py).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TypeAlias

import grpc
from grpc_health.v1 import health_pb2

from libs.contract import allowed_callers
from libs.logging import configure_logging
from libs.ports import report_ports
from libs.service import run_main
from libs.tls import TlsFiles, load_identity

METHOD = "/bench.Echo/Echo"
# The framework echo's carrier messages: a small protobuf each way, as a service call has.
Message: TypeAlias = health_pb2.HealthCheckRequest


def _identity(data: bytes) -> bytes:
    return data


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def _echo_message(request: Message, context: grpc.aio.ServicerContext) -> Message:
    return request


def _bench_callers(method: str) -> frozenset[str] | None:
    """The contract, plus the echo (called by the bench as `operator`)."""
    return frozenset({"operator"}) if method == METHOD else allowed_callers(method)


async def serve(port: int, tls_dir: str | None = None, port_file: str = "") -> None:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler("bench.Echo", {
        "Echo": grpc.unary_unary_rpc_method_handler(
            _echo, request_deserializer=_identity, response_serializer=_identity),
    })
    server.add_generic_rpc_handlers((handler,))
    if tls_dir:
        credentials = load_identity(TlsFiles.in_dir(tls_dir)).server_credentials()
        bound = server.add_secure_port(f"127.0.0.1:{port}", credentials)
    else:
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    report_ports(port_file, grpc=bound)  # port 0: the caller learns the port from the file
    await server.wait_for_termination()


async def serve_framework(port: int, tls_dir: str, port_file: str, log_level: str) -> None:
    from libs.grpc_server import ServiceHost  # after logging is configured, as in a service

    configure_logging("bench-echo", log_level)  # SIGUSR1/SIGUSR2 switch it, as in a service
    host = ServiceHost(service="bench-echo", service_names=["bench.Echo"],
                       authorize=_bench_callers)
    host.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Echo", {
        "Echo": grpc.unary_unary_rpc_method_handler(
            _echo_message, request_deserializer=Message.FromString,
            response_serializer=Message.SerializeToString),
    }),))
    bound = await host.start(port, "127.0.0.1", tls=load_identity(TlsFiles.in_dir(tls_dir)),
                             health_port=None)
    report_ports(port_file, grpc=bound)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-dir", help="ca.crt, tls.crt, tls.key: serve with mutual TLS")
    parser.add_argument("--port-file", default="", help="report the bound port here (libs/ports)")
    parser.add_argument("--framework", action="store_true",
                        help="serve through libs.grpc_server.ServiceHost (needs --tls-dir)")
    parser.add_argument("--log-level", default="info", help="with --framework")
    args = parser.parse_args()
    if args.framework:
        run_main(serve_framework(args.port, args.tls_dir, args.port_file, args.log_level))
    else:
        asyncio.run(serve(args.port, args.tls_dir, args.port_file))


if __name__ == "__main__":
    main()
