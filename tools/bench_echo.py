"""A bare grpc.aio unary echo server: the floor that every service scenario is compared with.

No protobuf, no interceptors, no database: bytes in, the same bytes out. With `--tls-dir` it
speaks mutual TLS like the services do (libs/tls.py), so the floor includes the same transport.
"""

from __future__ import annotations

import argparse
import asyncio

import grpc

from libs.ports import report_ports
from libs.tls import TlsFiles, load_identity

METHOD = "/bench.Echo/Echo"


def _identity(data: bytes) -> bytes:
    return data


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-dir", help="ca.crt, tls.crt, tls.key: serve with mutual TLS")
    parser.add_argument("--port-file", default="", help="report the bound port here (libs/ports)")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.tls_dir, args.port_file))


if __name__ == "__main__":
    main()
