"""The phone vault: numbers sealed at rest, revealed only for a delivery (audited), and
re-sealed under the newest key after a rotation."""

from __future__ import annotations

from libs.clock import Clock, system_clock
from libs.db import Connection
from libs.errors import FailedPrecondition
from services.identity.adapters.postgres import PhoneRepository
from services.identity.domain.merchants import valid_brand_id
from services.identity.domain.phones import PhoneVault, mask_phone, normalise_phone
from services.identity.usecases.accounts import get_account

RESEAL_BATCH = 500
MAX_MESSAGE_ID = 128


async def store_phone(conn: Connection, vault: PhoneVault, account_id: str, phone: str, *,
                      clock: Clock = system_clock) -> tuple[bool, str]:
    """Seal the normalised number; storing the number already on file changes nothing.

    Returns (changed, masked number)."""
    e164 = normalise_phone(phone)
    account = await get_account(conn, account_id)
    repo = PhoneRepository(conn)
    await repo.lock_account(account.account_id)
    fingerprint = vault.fingerprint(e164)
    current = await repo.get(account.account_id)
    if current is not None and current[1] == fingerprint:
        return False, mask_phone(e164)
    await repo.put(account.account_id, vault.seal(account.account_id, e164), fingerprint,
                   clock())
    return True, mask_phone(e164)


async def open_phone(conn: Connection, vault: PhoneVault, account_id: str) -> str:
    """The plaintext number on file; FailedPrecondition when there is none."""
    stored = await PhoneRepository(conn).get(account_id)
    if stored is None:
        raise FailedPrecondition("the account has no phone number on file",
                                 reason="PHONE_NOT_ON_FILE", metadata={"account_id": account_id})
    return vault.open(account_id, stored[0])


async def reveal_phone_for_delivery(conn: Connection, vault: PhoneVault, account_id: str,
                                    brand_id: str, purpose: str, message_id: str, *,
                                    clock: Clock = system_clock) -> str:
    """The plaintext number for a send, audited by brand, purpose and message."""
    account = await get_account(conn, account_id)
    brand_id = valid_brand_id(brand_id)
    phone = await open_phone(conn, vault, account.account_id)
    await PhoneRepository(conn).audit_reveal(account.account_id, brand_id, purpose,
                                             message_id.strip()[:MAX_MESSAGE_ID], clock())
    return phone


async def reseal_phones(conn: Connection, vault: PhoneVault, *,
                        clock: Clock = system_clock) -> int:
    """Re-encrypt one batch of numbers sealed with an older key (after a rotation)."""
    repo = PhoneRepository(conn)
    accounts = await repo.stale(vault.current_version, RESEAL_BATCH)
    for account_id in accounts:
        stored = await repo.get(account_id)
        assert stored is not None  # listed as stale in this transaction
        phone = vault.open(account_id, stored[0])
        await repo.put(account_id, vault.seal(account_id, phone), stored[1], clock())
    return len(accounts)
