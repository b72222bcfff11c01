-- Dashboards (issue 8): the daily pre-aggregation and indexes for per-day counting.

CREATE TABLE dashboard_daily (
    brand_id               text        NOT NULL,
    day                    date        NOT NULL,   -- in the brand's time zone
    new_members            bigint      NOT NULL,
    new_members_by_source  jsonb       NOT NULL,
    new_card_members       bigint      NOT NULL,
    lv0_members            bigint      NOT NULL,
    card_members           bigint      NOT NULL,
    buyers                 bigint      NOT NULL,
    new_buyers             bigint      NOT NULL,
    member_orders          bigint      NOT NULL,
    member_order_cents     bigint      NOT NULL,
    non_member_orders      bigint      NOT NULL,
    non_member_order_cents bigint      NOT NULL,
    computed_at            timestamptz NOT NULL,
    PRIMARY KEY (brand_id, day)
);

CREATE INDEX members_by_brand_since ON members (brand_id, member_since);
CREATE INDEX members_by_brand_joined ON members (brand_id, joined_at) WHERE joined_at IS NOT NULL;
CREATE INDEX members_by_brand_ended ON members (brand_id, ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX orders_by_brand_paid ON orders (brand_id, paid_at);
