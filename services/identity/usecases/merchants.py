"""Merchant users: a brand's console logins (create, read, list, disable)."""

from __future__ import annotations

from libs.db import Connection
from libs.errors import AlreadyExists, NotFound, require
from libs.idempotency import CommitOnce
from libs.paging import decode_page_token, keyset_page, page_size
from services.identity.adapters.postgres import MerchantRepository
from services.identity.domain.merchants import (
    MerchantUser,
    hash_password,
    new_merchant_user_id,
    valid_brand_id,
    valid_display_name,
    valid_login_name,
)
from services.identity.usecases.context import IdentityContext, Reply


def merchant_user_not_found(merchant_user_id: str) -> NotFound:
    return NotFound(f"merchant user {merchant_user_id} does not exist",
                    reason="MERCHANT_USER_NOT_FOUND",
                    metadata={"merchant_user_id": merchant_user_id})


async def create_merchant_user(ctx: IdentityContext,
                               commit_once: CommitOnce[MerchantUser, Reply], brand_id: str,
                               login_name: str, display_name: str, password: str) -> Reply:
    async def create(conn: Connection) -> MerchantUser:
        user = MerchantUser(new_merchant_user_id(), valid_brand_id(brand_id),
                            valid_login_name(login_name), valid_display_name(display_name),
                            False, ctx.clock())
        if not await MerchantRepository(conn).add(user, hash_password(password)):
            raise AlreadyExists(f"login name {user.login_name!r} is taken",
                                reason="LOGIN_NAME_TAKEN",
                                metadata={"login_name": user.login_name})
        return user

    return await commit_once(create)


async def get_merchant_user(ctx: IdentityContext, brand_id: str,
                            merchant_user_id: str) -> MerchantUser:
    """A user of this brand only: another brand's user is simply not found."""
    async with ctx.db.connection() as conn:
        return await _brand_user(conn, brand_id, merchant_user_id)


async def _brand_user(conn: Connection, brand_id: str, merchant_user_id: str) -> MerchantUser:
    user = await MerchantRepository(conn).get(require(merchant_user_id, "merchant_user_id"))
    if user is None or user.brand_id != valid_brand_id(brand_id):
        raise merchant_user_not_found(merchant_user_id)
    return user


async def list_merchant_users(ctx: IdentityContext, brand_id: str, requested_size: int,
                              token: str) -> tuple[list[MerchantUser], str]:
    """One page of the brand's merchant users, by id."""
    brand_id = valid_brand_id(brand_id)
    size = page_size(requested_size)
    filters = {"brand_id": brand_id}
    position = decode_page_token(token, ("after",), filters=filters)
    async with ctx.db.connection() as conn:
        users = await MerchantRepository(conn).list(
            brand_id, str(position["after"]) if position else "", size + 1)
    return keyset_page(users, size, lambda user: {"after": user.merchant_user_id},
                       filters=filters)


async def disable_merchant_user(ctx: IdentityContext,
                                commit_once: CommitOnce[MerchantUser, Reply], brand_id: str,
                                merchant_user_id: str) -> Reply:
    """Disables the user; their tokens stop verifying at once (verify_token reads the user)."""
    async def disable(conn: Connection) -> MerchantUser:
        user = await _brand_user(conn, brand_id, merchant_user_id)
        return await MerchantRepository(conn).disable(user.merchant_user_id, ctx.clock())

    return await commit_once(disable)
