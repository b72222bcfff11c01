"""Message templates: creating, reading, listing, checking a caller's variables."""

from __future__ import annotations

from dataclasses import replace

from libs.db import Connection
from libs.errors import InvalidArgument, found, require
from libs.idempotency import CommitOnce, Reply
from libs.paging import decode_time_and_id, keyset_page, page_size, time_and_id
from services.messaging.adapters.templates_repository import TemplatesRepository
from services.messaging.domain.channels import Channel, new_id
from services.messaging.domain.templates import (
    Template,
    template_variables,
    validate_template_shape,
)
from services.messaging.usecases.context import MessagingContext


async def create_template(app: MessagingContext, commit_once: CommitOnce[Template, Reply],
                          draft: Template) -> Reply:
    async def save(conn: Connection) -> Template:
        require(draft.brand_id, "template.brand_id")
        require(draft.name, "template.name")
        validate_template_shape(draft.channel, draft.title, draft.body,
                                draft.provider_template_code, draft.provider_params)
        used = template_variables(draft.title, draft.body, draft.provider_params,
                                  draft.custom_variables)
        created = replace(draft, template_id=new_id("tpl"), variables=used,
                          custom_variables=sorted(set(draft.custom_variables)),
                          created_at=app.clock())
        await TemplatesRepository(conn).add_template(created)
        return created

    return await commit_once(save)


async def get_template(conn: Connection, brand_id: str, template_id: str) -> Template:
    template = await TemplatesRepository(conn).template(require(brand_id, "brand_id"),
                                                        require(template_id, "template_id"))
    return found(template, f"template {template_id}", reason="TEMPLATE_NOT_FOUND",
                 template_id=template_id)


async def read_template(app: MessagingContext, brand_id: str, template_id: str) -> Template:
    async with app.db.connection() as conn:
        return await get_template(conn, brand_id, template_id)


async def list_templates(app: MessagingContext, brand_id: str, requested_size: int,
                         token: str, channel: Channel | None) -> tuple[list[Template], str]:
    """One page of the brand's templates (of one channel, if given), newest first."""
    filters = {"brand_id": require(brand_id, "brand_id"),
               "channel": channel.value if channel else ""}
    size = page_size(requested_size)
    after = decode_time_and_id(token, filters=filters)
    async with app.db.connection() as conn:
        rows = await TemplatesRepository(conn).templates_page(brand_id, size + 1, after, channel)
    return keyset_page(rows, size, lambda t: time_and_id(t.created_at, t.template_id),
                       filters=filters)


def unknown_variables(template: Template, supplied: dict[str, str], field: str) -> None:
    for name in supplied:
        if name not in template.custom_variables:
            raise InvalidArgument(f"template {template.template_id} has no custom variable "
                                  f"{name}", field=f"{field}.{name}",
                                  reason="UNKNOWN_TEMPLATE_VARIABLE")
