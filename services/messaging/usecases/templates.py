"""Message templates: creating, reading, listing, checking a caller's variables."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from libs.db import Connection
from libs.errors import InvalidArgument, found, require
from services.messaging.adapters.templates_repository import TemplatesRepository
from services.messaging.domain.channels import Channel, new_id
from services.messaging.domain.templates import (
    Template,
    template_variables,
    validate_template_shape,
)
from services.messaging.usecases.paging import brand_page


async def create_template(conn: Connection, template: Template) -> Template:
    require(template.brand_id, "template.brand_id")
    require(template.name, "template.name")
    validate_template_shape(template.channel, template.title, template.body,
                            template.provider_template_code, template.provider_params)
    used = template_variables(template.title, template.body, template.provider_params,
                              template.custom_variables)
    created = replace(template, template_id=new_id("tpl"), variables=used,
                      custom_variables=sorted(set(template.custom_variables)))
    await TemplatesRepository(conn).add_template(created)
    return created


async def get_template(conn: Connection, brand_id: str, template_id: str) -> Template:
    template = await TemplatesRepository(conn).template(require(brand_id, "brand_id"),
                                                        require(template_id, "template_id"))
    return found(template, f"template {template_id}", reason="TEMPLATE_NOT_FOUND",
                 template_id=template_id)


async def list_templates(conn: Connection, brand_id: str, requested_size: int, token: str,
                         channel: Channel | None) -> tuple[list[Template], str]:

    async def fetch(brand: str, limit: int,
                    after: tuple[datetime, str] | None) -> list[Template]:
        return await TemplatesRepository(conn).templates_page(brand, limit, after, channel)

    return await brand_page(brand_id, requested_size, token, fetch,
                            lambda t: (t.created_at, t.template_id))


def unknown_variables(template: Template, supplied: dict[str, str], field: str) -> None:
    for name in supplied:
        if name not in template.custom_variables:
            raise InvalidArgument(f"template {template.template_id} has no custom variable "
                                  f"{name}", field=f"{field}.{name}",
                                  reason="UNKNOWN_TEMPLATE_VARIABLE")
