-- The points projection keeps the newest balance it saw: events carry a per-account version.
ALTER TABLE member_points ADD COLUMN balance_version bigint NOT NULL DEFAULT 0;
