-- Member profile (given when the card is opened), order statistics and behaviours.
-- Segments and dashboards read these columns; identity/membership (issue 3) fills them.

ALTER TABLE members
    ADD COLUMN joined_at      timestamptz,               -- card opened (NULL while LV0)
    ADD COLUMN birthday       date,
    ADD COLUMN gender         text NOT NULL DEFAULT 'unknown'
        CHECK (gender IN ('male', 'female', 'unknown')),
    ADD COLUMN baby_birthday  date,
    ADD COLUMN dormant        boolean NOT NULL DEFAULT false;  -- abnormal or long inactive

-- Per (brand, account) order figures, kept current from OrderPaid / OrderRefunded.
CREATE TABLE member_stats (
    brand_id          text        NOT NULL,
    account_id        text        NOT NULL,
    order_count       integer     NOT NULL DEFAULT 0,
    paid_cents        bigint      NOT NULL DEFAULT 0,   -- paid minus refunded
    first_order_at    timestamptz,
    last_order_at     timestamptz,
    PRIMARY KEY (brand_id, account_id)
);

-- Behaviours with their time, for "did X within a window" segment conditions.
CREATE TABLE member_behaviours (
    brand_id    text        NOT NULL,
    account_id  text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('followed', 'cart_added', 'purchased')),
    occurred_at timestamptz NOT NULL
);
CREATE INDEX member_behaviours_lookup
    ON member_behaviours (brand_id, kind, occurred_at, account_id);

-- Projection of points balances from the benefits service's PointsBalanceChanged events.
CREATE TABLE member_points (
    brand_id   text   NOT NULL,
    account_id text   NOT NULL,
    available  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (brand_id, account_id)
);
