"""Message templates."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from libs.db import Connection
from services.messaging.adapters.brand_pages import newest_first_page
from services.messaging.adapters.rows import template_from_row
from services.messaging.domain.channels import Channel
from services.messaging.domain.templates import Template


class TemplatesRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add_template(self, t: Template) -> None:
        await self.conn.execute(
            "INSERT INTO templates (template_id, brand_id, channel, purpose, name, title, body, "
            "provider_template_code, provider_params, variables, custom_variables, link_url, "
            "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            t.template_id, t.brand_id, t.channel.value, t.purpose.value, t.name, t.title, t.body,
            t.provider_template_code, json.dumps(t.provider_params), t.variables,
            t.custom_variables, t.link_url, t.created_at)

    async def template(self, brand_id: str, template_id: str) -> Template | None:
        r = await self.conn.fetchrow(
            "SELECT * FROM templates WHERE brand_id = $1 AND template_id = $2",
            brand_id, template_id)
        return template_from_row(r) if r else None

    async def templates_page(self, brand_id: str, limit: int,
                             after: tuple[datetime, str] | None,
                             channel: Channel | None) -> list[Template]:
        rows = await newest_first_page(self.conn, "templates", "template_id", brand_id, limit,
                                       after, "AND ($5::text IS NULL OR channel = $5)",
                                       channel.value if channel else None)
        return [template_from_row(r) for r in rows]

    async def templates(self, ids: Iterable[str]) -> dict[str, Template]:
        rows = await self.conn.fetch("SELECT * FROM templates WHERE template_id = ANY($1)",
                                     list(set(ids)))
        return {r["template_id"]: template_from_row(r) for r in rows}
