"""The phone vault: numbers sealed at rest, revealed only for a delivery (audited), and
re-sealed under the newest key after a rotation.

Storing is naturally idempotent (the same number changes nothing) and deliberately not run
through the idempotency table: its request fingerprint would be a plain hash of the number.
"""

from __future__ import annotations

from libs.db import Connection
from libs.errors import FailedPrecondition
from services.identity.adapters.postgres import PhoneRepository
from services.identity.domain.merchants import valid_brand_id
from services.identity.domain.phones import PhoneVault, mask_phone, normalise_phone
from services.identity.usecases.accounts import account_of
from services.identity.usecases.context import IdentityContext

RESEAL_BATCH = 500
MAX_MESSAGE_ID = 128


async def store_phone(ctx: IdentityContext, account_id: str, phone: str) -> tuple[bool, str]:
    """Seal the normalised number; storing the number already on file changes nothing.

    Returns (changed, masked number)."""
    e164 = normalise_phone(phone)
    async with ctx.db.transaction() as conn:
        account = await account_of(conn, account_id)
        repo = PhoneRepository(conn)
        await repo.lock_account(account.account_id)
        fingerprint = ctx.vault.fingerprint(e164)
        current = await repo.get(account.account_id)
        if current is not None and current[1] == fingerprint:
            return False, mask_phone(e164)
        await repo.put(account.account_id, ctx.vault.seal(account.account_id, e164),
                       fingerprint, ctx.clock())
    return True, mask_phone(e164)


async def open_phone(conn: Connection, vault: PhoneVault, account_id: str) -> str:
    """The plaintext number on file; FailedPrecondition when there is none."""
    stored = await PhoneRepository(conn).get(account_id)
    if stored is None:
        raise FailedPrecondition("the account has no phone number on file",
                                 reason="PHONE_NOT_ON_FILE", metadata={"account_id": account_id})
    return vault.open(account_id, stored[0])


async def reveal_phone_for_delivery(ctx: IdentityContext, account_id: str, brand_id: str,
                                    purpose: str, message_id: str) -> str:
    """The plaintext number for a send, audited by brand, purpose and message."""
    async with ctx.db.transaction() as conn:
        account = await account_of(conn, account_id)
        brand_id = valid_brand_id(brand_id)
        phone = await open_phone(conn, ctx.vault, account.account_id)
        await PhoneRepository(conn).audit_reveal(account.account_id, brand_id, purpose,
                                                 message_id.strip()[:MAX_MESSAGE_ID],
                                                 ctx.clock())
    return phone


async def reseal_phones(ctx: IdentityContext) -> int:
    """Re-encrypt one batch of numbers sealed with an older key (after a rotation)."""
    async with ctx.db.transaction() as conn:
        repo = PhoneRepository(conn)
        accounts = await repo.stale(ctx.vault.current_version, RESEAL_BATCH)
        for account_id in accounts:
            stored = await repo.get(account_id)
            assert stored is not None  # listed as stale in this transaction
            phone = ctx.vault.open(account_id, stored[0])
            await repo.put(account_id, ctx.vault.seal(account_id, phone), stored[1],
                           ctx.clock())
    return len(accounts)
