"""Parsing the chunks of an encrypted-phone import: "<hmac hex>,<crm member id>" lines."""

from __future__ import annotations

import enum
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

HEADER = "phone_hash,crm_member_id"
# Under gRPC's default 4 MiB message limit, with room for the other fields.
MAX_CHUNK_BYTES = 4_000_000
MAX_CRM_MEMBER_ID = 64
ERRORS_PER_RESPONSE = 100
_CRM_ID = re.compile(r"^[A-Za-z0-9_\-.:@]{1,64}$")


class ImportStatus(enum.Enum):
    RECEIVING = "receiving"
    COMPLETED = "completed"


@dataclass(frozen=True)
class PhoneMatchImport:
    import_id: str
    brand_id: str
    status: ImportStatus
    expected_rows: int
    lines_received: int
    accepted_rows: int
    rejected_rows: int
    chunks_received: int
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str
    message: str


@dataclass
class ParsedChunk:
    """Good rows as (line, phone hash, crm member id), bad rows by line, lines consumed."""

    rows: list[tuple[int, bytes, str]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    lines: int = 0


def new_import_id() -> str:
    return f"imp_{uuid.uuid4().hex}"


def parse_chunk(data: bytes, first_line: int) -> ParsedChunk:
    """Parse whole CSV lines; `first_line` is the 1-based file line of the chunk's first line.

    Blank lines count as lines but are not rows; the header is allowed as the file's line 1;
    a phone hash repeated within the chunk is reported on its later lines.
    """
    parsed = ParsedChunk()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = first_line + data[:exc.start].count(b"\n")
        text = data.decode("utf-8", errors="replace")
        parsed.errors.append(RowError(bad_line, "ENCODING_INVALID", "line is not UTF-8"))
        bad_lines = {bad_line}
    else:
        bad_lines = set()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    parsed.lines = len(lines)
    seen: dict[bytes, int] = {}
    rows = parsed.rows
    errors = parsed.errors
    for offset, raw in enumerate(lines):
        line = first_line + offset
        if line in bad_lines:
            continue
        value = raw.strip()
        if not value:
            continue
        if line == 1 and value.replace(" ", "").lower() == HEADER:
            continue
        parts = value.split(",")
        if len(parts) != 2:
            errors.append(RowError(line, "COLUMN_COUNT",
                                   f"expected 2 columns, found {len(parts)}"))
            continue
        hex_hash, crm_id = parts[0].strip(), parts[1].strip()
        if len(hex_hash) != 64:
            errors.append(RowError(line, "PHONE_HASH_INVALID",
                                   "phone hash must be 64 hexadecimal characters"))
            continue
        try:
            digest = bytes.fromhex(hex_hash)
        except ValueError:
            errors.append(RowError(line, "PHONE_HASH_INVALID",
                                   "phone hash must be 64 hexadecimal characters"))
            continue
        if not _CRM_ID.match(crm_id):
            errors.append(RowError(line, "CRM_MEMBER_ID_INVALID",
                                   "crm member id must be 1-64 letters, digits or _-.:@"))
            continue
        earlier = seen.get(digest)
        if earlier is not None:
            errors.append(RowError(line, "DUPLICATE_PHONE",
                                   f"the same phone hash is on line {earlier}"))
            continue
        seen[digest] = line
        rows.append((line, digest, crm_id))
    errors.sort(key=lambda e: e.line)
    return parsed
