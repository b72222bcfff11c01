-- Points ledger (immutable entries + lots), policies, earning rules, coupons, gift packs and
-- the points mall. Balances on points_accounts always equal the sums of points_entries.

ALTER TABLE points_accounts
    ADD COLUMN shortfall bigint NOT NULL DEFAULT 0,   -- owed after a clawback found too few
    ADD COLUMN version   bigint NOT NULL DEFAULT 0;   -- +1 per change (PointsBalanceChanged)

CREATE TABLE points_policies (
    brand_id                 text PRIMARY KEY,
    expiry_mode              text    NOT NULL
        CHECK (expiry_mode IN ('never', 'rolling_days', 'calendar_year_end')),
    expiry_days              integer NOT NULL DEFAULT 0,
    negative_balance_allowed boolean NOT NULL DEFAULT false,
    time_zone                text    NOT NULL,
    updated_at               timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE points_entries (
    seq               bigserial   NOT NULL,
    brand_id          text        NOT NULL,
    entry_id          text        NOT NULL,
    account_id        text        NOT NULL,
    kind              text        NOT NULL,
    amount            bigint      NOT NULL,
    available_delta   bigint      NOT NULL,
    pending_delta     bigint      NOT NULL,
    shortfall         bigint      NOT NULL DEFAULT 0,
    reason_code       text        NOT NULL,
    source            text        NOT NULL,
    request_id        text        NOT NULL,
    reverses_entry_id text,
    available_at      timestamptz,
    created_at        timestamptz NOT NULL,
    PRIMARY KEY (brand_id, entry_id)
);
CREATE INDEX points_entries_history ON points_entries (brand_id, account_id, seq DESC);
-- An entry is reversed at most once.
CREATE UNIQUE INDEX points_entries_one_reversal
    ON points_entries (brand_id, reverses_entry_id) WHERE reverses_entry_id IS NOT NULL;

-- Available points are held in lots; spends take the soonest-expiring lot first.
CREATE TABLE points_lots (
    brand_id   text        NOT NULL,
    lot_id     text        NOT NULL,
    account_id text        NOT NULL,
    entry_id   text        NOT NULL,
    amount     bigint      NOT NULL CHECK (amount >= 0),
    remaining  bigint      NOT NULL CHECK (remaining >= 0),
    expires_at timestamptz,                       -- NULL: never
    created_at timestamptz NOT NULL,
    PRIMARY KEY (brand_id, lot_id)
);
CREATE INDEX points_lots_open ON points_lots (brand_id, account_id, expires_at)
    WHERE remaining > 0;
CREATE INDEX points_lots_due ON points_lots (expires_at)
    WHERE remaining > 0 AND expires_at IS NOT NULL;

-- How each entry moved points in or out of lots (negative: taken), so a spend can be put back
-- into the lots it came from.
CREATE TABLE points_lot_moves (
    brand_id text   NOT NULL,
    entry_id text   NOT NULL,
    lot_id   text   NOT NULL,
    amount   bigint NOT NULL
);
CREATE INDEX points_lot_moves_by_entry ON points_lot_moves (brand_id, entry_id);

-- Pending grants until their release time.
CREATE TABLE points_pending (
    brand_id          text        NOT NULL,
    entry_id          text        NOT NULL,   -- the PENDING_GRANT entry
    account_id        text        NOT NULL,
    amount            bigint      NOT NULL CHECK (amount >= 0),   -- still pending
    release_at        timestamptz NOT NULL,
    state             text        NOT NULL CHECK (state IN ('pending', 'released', 'cancelled')),
    released_amount   bigint      NOT NULL DEFAULT 0,
    released_entry_id text,
    PRIMARY KEY (brand_id, entry_id)
);
CREATE INDEX points_pending_due ON points_pending (release_at) WHERE state = 'pending';

-- Earning.
CREATE TABLE earning_rules (
    brand_id                 text        NOT NULL,
    rule_id                  text        NOT NULL,
    trigger                  text        NOT NULL,
    title                    text        NOT NULL,
    points                   bigint      NOT NULL DEFAULT 0,
    points_per_currency_unit bigint      NOT NULL DEFAULT 0,
    activity_id              text        NOT NULL DEFAULT '',
    daily_cap_points         bigint      NOT NULL DEFAULT 0,
    lifetime_cap_points      bigint      NOT NULL DEFAULT 0,
    budget_points            bigint      NOT NULL DEFAULT 0,
    granted_points           bigint      NOT NULL DEFAULT 0,
    enabled                  boolean     NOT NULL,
    created_at               timestamptz NOT NULL,
    updated_at               timestamptz NOT NULL,
    PRIMARY KEY (brand_id, rule_id)
);
CREATE INDEX earning_rules_by_trigger ON earning_rules (brand_id, trigger) WHERE enabled;

-- Points a member earned from a rule per local day ('YYYY-MM-DD') and in total ('').
CREATE TABLE earning_counters (
    brand_id   text   NOT NULL,
    rule_id    text   NOT NULL,
    account_id text   NOT NULL,
    period     text   NOT NULL,
    points     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (brand_id, rule_id, account_id, period)
);

CREATE TABLE tier_multipliers (
    brand_id text    NOT NULL,
    level    integer NOT NULL,
    percent  integer NOT NULL CHECK (percent > 0),
    PRIMARY KEY (brand_id, level)
);

-- Each member's level as membership last reported it (MemberJoined / MemberTierChanged).
CREATE TABLE member_levels (
    brand_id   text        NOT NULL,
    account_id text        NOT NULL,
    level      integer     NOT NULL,
    as_of      timestamptz NOT NULL,
    PRIMARY KEY (brand_id, account_id)
);

-- Points earned per order, so a refund takes back its share exactly once.
CREATE TABLE order_points (
    brand_id         text        NOT NULL,
    order_id         text        NOT NULL,
    account_id       text        NOT NULL,
    paid_cents       bigint      NOT NULL,
    points           bigint      NOT NULL,
    refunded_cents   bigint      NOT NULL DEFAULT 0,
    points_taken     bigint      NOT NULL DEFAULT 0,
    entry_id         text,                      -- the grant (NULL when it earned nothing)
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (brand_id, order_id)
);

CREATE TABLE order_refunds (
    brand_id       text        NOT NULL,
    refund_id      text        NOT NULL,
    order_id       text        NOT NULL,
    refunded_cents bigint      NOT NULL,
    points_taken   bigint      NOT NULL,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (brand_id, refund_id)
);

-- Coupons.
CREATE TABLE coupon_templates (
    brand_id         text        NOT NULL,
    template_id      text        NOT NULL,
    title            text        NOT NULL,
    kind             text        NOT NULL CHECK (kind IN ('amount_off', 'percent_off')),
    amount_off_cents bigint      NOT NULL DEFAULT 0,
    percent_off      integer     NOT NULL DEFAULT 0,
    threshold_cents  bigint      NOT NULL DEFAULT 0,
    claim_start      timestamptz NOT NULL,
    claim_end        timestamptz,
    valid_start      timestamptz,
    valid_end        timestamptz,
    valid_days       integer     NOT NULL DEFAULT 0,
    total_stock      bigint      NOT NULL,
    issued_count     bigint      NOT NULL DEFAULT 0,
    per_member_limit integer     NOT NULL,
    eligible_levels  integer[]   NOT NULL DEFAULT '{}',
    placements       text[]      NOT NULL DEFAULT '{}',
    state            text        NOT NULL CHECK (state IN ('active', 'closed')),
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (brand_id, template_id),
    CHECK (issued_count <= total_stock)
);

CREATE TABLE coupon_holdings (
    brand_id    text    NOT NULL,
    template_id text    NOT NULL,
    account_id  text    NOT NULL,
    count       integer NOT NULL,
    PRIMARY KEY (brand_id, template_id, account_id)
);

CREATE TABLE coupons (
    seq         bigserial   NOT NULL,
    brand_id    text        NOT NULL,
    coupon_id   text        NOT NULL,
    template_id text        NOT NULL,
    account_id  text        NOT NULL,
    valid_start timestamptz NOT NULL,
    valid_end   timestamptz NOT NULL,
    source      text        NOT NULL,
    reason_code text        NOT NULL,
    issued_at   timestamptz NOT NULL,
    PRIMARY KEY (brand_id, coupon_id)
);
CREATE INDEX coupons_by_member ON coupons (brand_id, account_id, seq DESC);

-- Gift packs.
CREATE TABLE gift_packs (
    brand_id          text        NOT NULL,
    gift_pack_id      text        NOT NULL,
    title             text        NOT NULL,
    points            bigint      NOT NULL DEFAULT 0,
    coupon_templates  text[]      NOT NULL DEFAULT '{}',
    coupon_quantities integer[]   NOT NULL DEFAULT '{}',
    enabled           boolean     NOT NULL,
    start_time        timestamptz NOT NULL,
    end_time          timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (brand_id, gift_pack_id)
);

-- Exactly once per member per program.
CREATE TABLE gift_pack_grants (
    brand_id        text        NOT NULL,
    program_id      text        NOT NULL,
    account_id      text        NOT NULL,
    gift_pack_id    text        NOT NULL,
    points_entry_id text,
    coupon_ids      text[]      NOT NULL DEFAULT '{}',
    skipped         text[]      NOT NULL DEFAULT '{}',   -- templates out of stock or closed
    granted_at      timestamptz NOT NULL,
    PRIMARY KEY (brand_id, program_id, account_id)
);

-- Points mall.
CREATE TABLE mall_items (
    brand_id           text        NOT NULL,
    item_id            text        NOT NULL,
    kind               text        NOT NULL CHECK (kind IN ('coupon', 'virtual', 'physical')),
    title              text        NOT NULL,
    description        text        NOT NULL DEFAULT '',
    price_points       bigint      NOT NULL CHECK (price_points > 0),
    stock_total        bigint      NOT NULL,
    stock_redeemed     bigint      NOT NULL DEFAULT 0,
    per_member_limit   integer     NOT NULL DEFAULT 0,
    coupon_template_id text        NOT NULL DEFAULT '',
    eligible_levels    integer[]   NOT NULL DEFAULT '{}',
    state              text        NOT NULL CHECK (state IN ('on_sale', 'off_sale')),
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    PRIMARY KEY (brand_id, item_id),
    CHECK (stock_redeemed <= stock_total)
);

CREATE TABLE mall_holdings (
    brand_id   text    NOT NULL,
    item_id    text    NOT NULL,
    account_id text    NOT NULL,
    count      integer NOT NULL,
    PRIMARY KEY (brand_id, item_id, account_id)
);

-- The redemption saga: started -> points_spent -> completed | failed (points given back).
CREATE TABLE redemptions (
    seq               bigserial   NOT NULL,
    brand_id          text        NOT NULL,
    redemption_id     text        NOT NULL,
    request_id        text        NOT NULL,
    fingerprint       bytea       NOT NULL,
    account_id        text        NOT NULL,
    item_id           text        NOT NULL,
    quantity          integer     NOT NULL,
    points            bigint      NOT NULL,
    state             text        NOT NULL
        CHECK (state IN ('started', 'points_spent', 'completed', 'failed')),
    spend_entry_id    text,
    refund_entry_id   text,
    coupon_ids        text[]      NOT NULL DEFAULT '{}',
    virtual_code      text        NOT NULL DEFAULT '',
    fulfilment_status text        NOT NULL DEFAULT 'not_required',
    shipping_address  text        NOT NULL DEFAULT '',
    tracking_number   text        NOT NULL DEFAULT '',
    failure_reason    text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (brand_id, redemption_id),
    UNIQUE (brand_id, request_id)
);
CREATE INDEX redemptions_by_member ON redemptions (brand_id, account_id, seq DESC);
CREATE INDEX redemptions_unfinished ON redemptions (updated_at)
    WHERE state IN ('started', 'points_spent');
