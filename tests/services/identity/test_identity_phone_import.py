"""The encrypted-phone import of connected brands and matching at card opening."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

import grpc
import pytest

from brandclub.identity.v1 import identity_service_pb2 as pb
from brandclub.identity.v1 import identity_service_pb2_grpc as pb_grpc
from libs.grpc_client import remote_error
from services.identity.domain.imports import parse_chunk


def rid() -> str:
    return uuid.uuid4().hex


def published_rule(key: bytes, e164: str) -> str:
    """The brand's side of the rule, written from the published text only."""
    return hmac.new(key, e164.encode(), hashlib.sha256).hexdigest()


async def brand_key(identity: pb_grpc.IdentityServiceStub, brand_id: str) -> bytes:
    reply = await identity.GetPhoneMatchKey(pb.GetPhoneMatchKeyRequest(brand_id=brand_id))
    return base64.b64decode(reply.key_base64)


async def test_hundred_thousand_row_import_reports_bad_rows_by_line(
        identity: pb_grpc.IdentityServiceStub) -> None:
    """100,000 rows in chunks: good rows are applied, bad ones reported by file line, progress
    is readable, and a shopper whose phone is among them is matched to their CRM id."""
    key = await brand_key(identity, "brd_conn")
    lines = ["phone_hash,crm_member_id"]
    for i in range(100_000):
        lines.append(f"{published_rule(key, f'+86139{i:08d}')},CRM{i}")
    bad = {17: "nothaex,CRM-x", 5_000: "only-one-column", 60_001: f"{'ab' * 32},bad id!",
           99_999: lines[5].split(",")[0] + ",CRM-dup"}
    for line, text in bad.items():
        lines[line - 1] = text
    data = ("\n".join(lines) + "\n").encode()
    started = await identity.StartPhoneMatchImport(pb.StartPhoneMatchImportRequest(
        request_id=rid(), brand_id="brd_conn", expected_rows=100_000))
    import_id = started.phone_import.import_id
    chunks = [lines[i:i + 30_000] for i in range(0, len(lines), 30_000)]
    assert b"".join(("\n".join(c) + "\n").encode() for c in chunks) == data
    for index, chunk in enumerate(chunks):
        reply = await identity.AppendPhoneMatchRows(pb.AppendPhoneMatchRowsRequest(
            request_id=f"{import_id}:{index}", brand_id="brd_conn", import_id=import_id,
            chunk_index=index, csv=("\n".join(chunk) + "\n").encode()), timeout=60)
        if index == 0:
            progress = await identity.GetPhoneMatchImport(pb.GetPhoneMatchImportRequest(
                brand_id="brd_conn", import_id=import_id))
            assert progress.phone_import.lines_received == 30_000
    assert reply.phone_import.lines_received == 100_001
    done = await identity.CompletePhoneMatchImport(pb.CompletePhoneMatchImportRequest(
        request_id=rid(), brand_id="brd_conn", import_id=import_id))
    assert done.phone_import.status == pb.IMPORT_STATUS_COMPLETED
    assert (done.phone_import.accepted_rows, done.phone_import.rejected_rows) == (99_996, 4)
    errors = (await identity.ListPhoneMatchImportErrors(pb.ListPhoneMatchImportErrorsRequest(
        brand_id="brd_conn", import_id=import_id))).errors
    assert [(e.line, e.reason) for e in errors] == [
        (17, "PHONE_HASH_INVALID"), (5_000, "COLUMN_COUNT"), (60_001, "CRM_MEMBER_ID_INVALID"),
        (99_999, "DUPLICATE_PHONE")]

    shopper = (await identity.EnsureAccount(pb.EnsureAccountRequest(
        request_id=rid(), marketplace_account_id="shopper-1"))).account.account_id
    await identity.StorePhone(pb.StorePhoneRequest(request_id=rid(), account_id=shopper,
                                                   phone="13900001234"))
    match = await identity.MatchPhoneForBrand(pb.MatchPhoneForBrandRequest(
        request_id=rid(), brand_id="brd_conn", account_id=shopper))
    assert match.result == pb.PHONE_MATCH_RESULT_MATCHED
    assert match.crm_member_id == "CRM1234"
    assert match.encrypted_phone == published_rule(key, "+8613900001234")
    linked = (await identity.ListLinkedIdentities(
        pb.ListLinkedIdentitiesRequest(account_id=shopper))).identities
    assert [(i.kind, i.scope, i.external_id) for i in linked] == [
        (pb.IDENTITY_KIND_BRAND_CRM_MEMBER_ID, "brd_conn", "CRM1234")]


async def test_unmatched_shopper_is_new_and_gets_no_phone(
        identity: pb_grpc.IdentityServiceStub) -> None:
    """A shopper whose phone the brand does not know is NEW; no encrypted phone is returned,
    and another brand's rows never match."""
    key = await brand_key(identity, "brd_a")
    started = await identity.StartPhoneMatchImport(pb.StartPhoneMatchImportRequest(
        request_id=rid(), brand_id="brd_a"))
    await identity.AppendPhoneMatchRows(pb.AppendPhoneMatchRowsRequest(
        request_id=rid(), brand_id="brd_a", import_id=started.phone_import.import_id,
        chunk_index=0, csv=f"{published_rule(key, '+8613700000001')},A1\n".encode()))
    shopper = (await identity.EnsureAccount(pb.EnsureAccountRequest(
        request_id=rid(), marketplace_account_id="shopper-2"))).account.account_id
    await identity.StorePhone(pb.StorePhoneRequest(request_id=rid(), account_id=shopper,
                                                   phone="13700000001"))
    other = await identity.MatchPhoneForBrand(pb.MatchPhoneForBrandRequest(
        request_id=rid(), brand_id="brd_b", account_id=shopper))
    assert (other.result, other.encrypted_phone, other.crm_member_id) == (
        pb.PHONE_MATCH_RESULT_NEW, "", "")
    own = await identity.MatchPhoneForBrand(pb.MatchPhoneForBrandRequest(
        request_id=rid(), brand_id="brd_a", account_id=shopper))
    assert own.crm_member_id == "A1"
    assert await brand_key(identity, "brd_a") != await brand_key(identity, "brd_b")


async def test_chunks_must_come_in_order_and_retries_replay(
        identity: pb_grpc.IdentityServiceStub) -> None:
    """A skipped chunk index is refused; a retried chunk answers as the first time and is
    not applied twice; another brand cannot see the import."""
    started = await identity.StartPhoneMatchImport(pb.StartPhoneMatchImportRequest(
        request_id=rid(), brand_id="brd_a"))
    import_id = started.phone_import.import_id
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await identity.AppendPhoneMatchRows(pb.AppendPhoneMatchRowsRequest(
            request_id=rid(), brand_id="brd_a", import_id=import_id, chunk_index=1,
            csv=b""))
    assert remote_error(caught.value).reason == "CHUNK_OUT_OF_ORDER"
    request = pb.AppendPhoneMatchRowsRequest(
        request_id="chunk-0", brand_id="brd_a", import_id=import_id, chunk_index=0,
        csv=f"{'ab' * 32},A1\n{'cd' * 32},A2\n".encode())
    first = await identity.AppendPhoneMatchRows(request)
    second = await identity.AppendPhoneMatchRows(request)
    assert first == second
    assert second.phone_import.accepted_rows == 2
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await identity.GetPhoneMatchImport(pb.GetPhoneMatchImportRequest(
            brand_id="brd_b", import_id=import_id))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_parse_chunk_counts_lines_and_reports_errors() -> None:
    """Lines are numbered from the chunk's first file line; blanks count but are not rows."""
    parsed = parse_chunk(f"{'ab' * 32},A1\n\n{'ab' * 32},A2\nx,y,z\n".encode(), 11)
    assert parsed.lines == 4
    assert [row[0] for row in parsed.rows] == [11]
    assert [(e.line, e.reason) for e in parsed.errors] == [
        (13, "DUPLICATE_PHONE"), (14, "COLUMN_COUNT")]
    broken = parse_chunk(b"ok\n\xff\xfe,A\n", 1)
    assert [(e.line, e.reason) for e in broken.errors] == [
        (1, "COLUMN_COUNT"), (2, "ENCODING_INVALID")]
