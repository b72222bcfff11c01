-- Narrow covering indexes for segment counts: an index-only scan of valid members by tier and
-- gender reads a fraction of the member rows (replaces the wide index of 0100).
DROP INDEX IF EXISTS members_valid_segment;
CREATE INDEX members_valid_by_level
    ON members (brand_id, level, gender) INCLUDE (account_id)
    WHERE status <> 'ended' AND NOT dormant;
CREATE INDEX members_valid_by_gender
    ON members (brand_id, gender, level) INCLUDE (account_id)
    WHERE status <> 'ended' AND NOT dormant;
CREATE INDEX members_valid_by_birthday
    ON members (brand_id, birthday) INCLUDE (account_id)
    WHERE status <> 'ended' AND NOT dormant AND birthday IS NOT NULL;
