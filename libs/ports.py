"""Ports handed over without a race: the serving process binds port 0 and reports what it got.

Choosing a "free" port by binding it, closing it and passing the number to another process
leaves a window in which anything else may take it (another test's server, or the ephemeral
port of any outgoing connection); the service then cannot bind. Instead, whoever starts a
service asks for port 0 and names a file in PORT_FILE: the service binds, then writes the ports
it really listens on there, atomically and with its pid (`report_ports`); the starter reads
them back (`wait_for_ports`). `closed_port` is the other need tests have: a port nothing
listens on, held for the duration so that nothing can start listening on it meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


def report_ports(path: str, **ports: int) -> None:
    """Write `ports` (name -> port) and this process's pid to `path`; nothing when path is ""."""
    if not path:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.{os.getpid()}")
    scratch.write_text(json.dumps({"pid": os.getpid(), **ports}))
    os.replace(scratch, target)  # readers see the whole file or none


def read_ports(path: Path, pid: int) -> dict[str, int] | None:
    """The ports `pid` reported in `path`, or None while it has not (yet) reported."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    if data.pop("pid", None) != pid:
        return None  # left over from an earlier process
    return {name: int(port) for name, port in data.items()}


async def wait_for_ports(path: Path, process: subprocess.Popen[bytes], *,
                         within_seconds: float = 60.0) -> dict[str, int]:
    """Wait until `process` has bound and reported its ports; fail if it exits first."""
    deadline = time.monotonic() + within_seconds
    while True:
        ports = read_ports(path, process.pid)
        if ports is not None:
            return ports
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with code {process.returncode} "
                               "before it reported its ports")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{process.args!r} reported no ports within {within_seconds} s")
        await asyncio.sleep(0.05)


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections for the whole block.

    The port stays bound (never listening) by this process until the block ends, so no other
    process can start listening on it meanwhile: a test of "the server is not there" cannot
    be answered by something else that happened to take the port.
    """
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # no SO_REUSEADDR: exclusive
    try:
        holder.bind(("127.0.0.1", 0))
        yield int(holder.getsockname()[1])
    finally:
        holder.close()


_held: list[socket.socket] = []


def held_closed_port() -> int:
    """Like `closed_port`, but held until this process ends: for a test that needs the number
    in an expression (a URL of a server that must not be there)."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    _held.append(holder)
    return int(holder.getsockname()[1])
