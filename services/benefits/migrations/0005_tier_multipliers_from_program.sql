-- tier_multipliers is the projection of the membership program's tiers (event ProgramChanged),
-- no longer a setting of its own: the program is the one place a tier's multiplier is kept.
-- This row records which program version the projection holds, so that an older change
-- delivered late never overwrites a newer one.
CREATE TABLE program_projections (
    brand_id           text        PRIMARY KEY,
    program_id         text        NOT NULL,
    program_updated_at timestamptz NOT NULL
);
