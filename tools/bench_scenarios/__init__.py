"""Bench scenarios, one module per area. Each module defines

    async def scenarios(ctx: BenchContext) -> list[Result]

which seeds what it needs through the running stack and measures with `ctx.measure(...)`.
`./dev bench` runs every module here, in name order, after the baselines.
"""
