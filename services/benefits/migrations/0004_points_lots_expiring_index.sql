-- Brand-wide "points expiring within N days" (ListPointsExpiringSoon, journeys): a covering
-- index over open lots that expire, walked in account order with the window as an index
-- condition, so a page is answered from the index alone.
CREATE INDEX points_lots_expiring ON points_lots (brand_id, account_id, expires_at)
    INCLUDE (remaining) WHERE remaining > 0 AND expires_at IS NOT NULL;
