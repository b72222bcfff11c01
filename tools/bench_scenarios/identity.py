"""Identity's bulk path: the connected brands' encrypted-phone import (a million rows)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import statistics
import time

import grpc

from brandclub.identity.v1 import identity_service_pb2 as identity_pb
from brandclub.identity.v1 import identity_service_pb2_grpc as identity_grpc
from tools.bench_core import BenchContext, Result

IMPORT_ROWS = 1_000_000
IMPORT_CHUNK_ROWS = 50_000


async def scenarios(ctx: BenchContext) -> list[Result]:
    return [await phone_import(ctx)]


async def phone_import(ctx: BenchContext) -> Result:
    """A million (encrypted phone, CRM id) rows through AppendPhoneMatchRows in 50,000-row
    chunks, one after another as a brand's upload would send them; 0.1% bad rows. Throughput
    is rows per second; the latencies are per chunk."""
    brand_id = f"brd_bench_import_{int(time.time())}"
    async with ctx.stack.channel("identity") as channel:
        identity = identity_grpc.IdentityServiceStub(channel)
        key = base64.b64decode((await identity.GetPhoneMatchKey(
            identity_pb.GetPhoneMatchKeyRequest(brand_id=brand_id), timeout=10)).key_base64)
        chunks: list[bytes] = []
        for start in range(0, IMPORT_ROWS, IMPORT_CHUNK_ROWS):
            lines = []
            for i in range(start, start + IMPORT_CHUNK_ROWS):
                if i % 1000 == 999:
                    lines.append(f"not-a-hash,CRM{i}")
                    continue
                digest = hmac.new(key, f"+86138{i:08d}".encode(), hashlib.sha256).hexdigest()
                lines.append(f"{digest},CRM{i}")
            chunks.append(("\n".join(lines) + "\n").encode())
        async with ctx.cpu_window() as cpu:
            done, latencies, errors, elapsed = await _import(identity, brand_id, chunks)
    rows = done.phone_import.lines_received
    latencies.sort()
    return Result(
        name="identity/phone-import-rows", concurrency=1, operations=rows, errors=errors,
        seconds=round(elapsed, 3), throughput=round(rows / elapsed, 1) if elapsed else 0.0,
        p50_ms=round(statistics.median(latencies) * 1000, 3) if latencies else 0.0,
        p99_ms=round(latencies[-1] * 1000, 3) if latencies else 0.0,
        log_level=ctx.log_levels[0], cpu_ms_per_op=cpu.per_operation(rows))


async def _import(identity: identity_grpc.IdentityServiceStub, brand_id: str,
                  chunks: list[bytes]) -> tuple[identity_pb.CompletePhoneMatchImportResponse,
                                                list[float], int, float]:
    """Start, append every chunk in order, complete: the reply, per-chunk latencies, failed
    chunks and the seconds it all took."""
    started = await identity.StartPhoneMatchImport(identity_pb.StartPhoneMatchImportRequest(
        request_id=f"bench:{brand_id}", brand_id=brand_id, expected_rows=IMPORT_ROWS),
        timeout=10)
    import_id = started.phone_import.import_id
    latencies: list[float] = []
    errors = 0
    began = time.perf_counter()
    for index, chunk in enumerate(chunks):
        sent = time.perf_counter()
        try:
            await identity.AppendPhoneMatchRows(identity_pb.AppendPhoneMatchRowsRequest(
                request_id=f"{import_id}:{index}", brand_id=brand_id, import_id=import_id,
                chunk_index=index, csv=chunk), timeout=120)
        except grpc.aio.AioRpcError:
            errors += 1
        latencies.append(time.perf_counter() - sent)
    done = await identity.CompletePhoneMatchImport(identity_pb.CompletePhoneMatchImportRequest(
        request_id=f"bench:{import_id}:done", brand_id=brand_id, import_id=import_id),
        timeout=10)
    return done, latencies, errors, time.perf_counter() - began
