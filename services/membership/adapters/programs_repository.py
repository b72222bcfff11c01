"""Brands' programs and their tiers."""

from __future__ import annotations

from libs.db import Connection
from services.membership.domain.program import Program, Tier


class ProgramRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def get_program(self, brand_id: str) -> Program | None:
        row = await self._conn.fetchrow("SELECT * FROM programs WHERE brand_id = $1", brand_id)
        if row is None:
            return None
        tiers = await self._conn.fetch(
            "SELECT * FROM program_tiers WHERE brand_id = $1 ORDER BY level", brand_id)
        return Program(
            row["program_id"], brand_id, row["terms_version"], row["terms_url"],
            tuple(row["consent_purposes"]),
            tuple(Tier(t["level"], t["name"], t["growth_threshold_cents"],
                       tuple(t["privileges"]), t["points_multiplier_percent"]) for t in tiers),
            row["growth_window_days"], row["retention_days"], row["dormant_after_days"],
            row["updated_at"])

    async def put_program(self, program: Program) -> None:
        await self._conn.execute(
            "INSERT INTO programs (program_id, brand_id, terms_version, terms_url, "
            "consent_purposes, growth_window_days, retention_days, dormant_after_days, "
            "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "ON CONFLICT (brand_id) DO UPDATE SET terms_version = EXCLUDED.terms_version, "
            "terms_url = EXCLUDED.terms_url, consent_purposes = EXCLUDED.consent_purposes, "
            "growth_window_days = EXCLUDED.growth_window_days, "
            "retention_days = EXCLUDED.retention_days, "
            "dormant_after_days = EXCLUDED.dormant_after_days, updated_at = EXCLUDED.updated_at",
            program.program_id, program.brand_id, program.terms_version, program.terms_url,
            list(program.consent_purposes), program.growth_window_days, program.retention_days,
            program.dormant_after_days, program.updated_at)
        await self._conn.execute("DELETE FROM program_tiers WHERE brand_id = $1",
                                 program.brand_id)
        await self._conn.executemany(
            "INSERT INTO program_tiers (brand_id, level, name, growth_threshold_cents, "
            "privileges, points_multiplier_percent) VALUES ($1, $2, $3, $4, $5, $6)",
            [(program.brand_id, t.level, t.name, t.growth_threshold_cents, list(t.privileges),
              t.points_multiplier_percent) for t in program.tiers])
