-- Dashboards at scale (issue 17): "was this order's buyer a card member when it was paid"
-- looks up the account's membership periods (ended ones too) once per order in the range.
-- Without this index the planner scanned the brand's card members per order: a 90-day daily
-- series of a brand of 1M members did not finish in ten minutes; with it, an index-only probe
-- per order.
CREATE INDEX members_by_brand_account
    ON members (brand_id, account_id) INCLUDE (member_since, joined_at, ended_at);
