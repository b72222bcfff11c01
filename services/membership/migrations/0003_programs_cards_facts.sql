-- Programs and tiers, card opening (consent, phone match), marketplace facts, dormancy.

ALTER TABLE brands
    ADD COLUMN lv0_gift_pack_id text NOT NULL DEFAULT '';   -- offered to LV0 shoppers

CREATE TABLE programs (
    program_id         text PRIMARY KEY,
    brand_id           text        NOT NULL UNIQUE REFERENCES brands (brand_id),
    terms_version      text        NOT NULL,
    terms_url          text        NOT NULL DEFAULT '',
    consent_purposes   text[]      NOT NULL DEFAULT '{}',
    growth_window_days integer     NOT NULL CHECK (growth_window_days BETWEEN 1 AND 3650),
    retention_days     integer     NOT NULL CHECK (retention_days BETWEEN 0 AND 3650),
    dormant_after_days integer     NOT NULL CHECK (dormant_after_days BETWEEN 1 AND 3650),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE program_tiers (
    brand_id                  text    NOT NULL REFERENCES brands (brand_id),
    level                     integer NOT NULL CHECK (level >= 1),
    name                      text    NOT NULL,
    growth_threshold_cents    bigint  NOT NULL CHECK (growth_threshold_cents >= 0),
    privileges                text[]  NOT NULL DEFAULT '{}',
    points_multiplier_percent integer NOT NULL CHECK (points_multiplier_percent BETWEEN 100 AND 1000),
    PRIMARY KEY (brand_id, level)
);

ALTER TABLE members
    ADD COLUMN level_since           timestamptz,
    ADD COLUMN invite_code           text    NOT NULL DEFAULT '',
    ADD COLUMN join_shop_id          text    NOT NULL DEFAULT '',
    ADD COLUMN has_phone             boolean NOT NULL DEFAULT false,
    ADD COLUMN phone_match           text    NOT NULL DEFAULT 'not_applicable'
        CHECK (phone_match IN ('not_applicable', 'matched', 'new')),
    ADD COLUMN encrypted_phone       text    NOT NULL DEFAULT '',   -- the brand's HMAC, matched only
    ADD COLUMN crm_member_id         text    NOT NULL DEFAULT '',
    ADD COLUMN consent_terms_version text    NOT NULL DEFAULT '',
    ADD COLUMN consent_purposes      text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN consent_at            timestamptz,
    ADD COLUMN consent_channel       text    NOT NULL DEFAULT '',
    ADD COLUMN end_reason            text    NOT NULL DEFAULT '';
CREATE INDEX members_by_brand_status_level ON members (brand_id, status, level, member_id);
CREATE INDEX members_live_by_account ON members (account_id) WHERE status <> 'ended';

-- Consent given on card opening, kept as evidence (terms version, purposes, time, channel).
CREATE TABLE member_consents (
    member_id     text        NOT NULL,
    brand_id      text        NOT NULL,
    account_id    text        NOT NULL,
    terms_version text        NOT NULL,
    purposes      text[]      NOT NULL,
    channel       text        NOT NULL,
    consented_at  timestamptz NOT NULL,
    withdrawn_at  timestamptz,
    PRIMARY KEY (brand_id, member_id, consented_at)
);

-- Marketplace facts already ingested, by the marketplace's event id ('' brand: account facts).
CREATE TABLE ingested_facts (
    brand_id    text        NOT NULL,
    event_id    text        NOT NULL,
    kind        text        NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (brand_id, event_id)
);

-- Paid orders (once per order id) and their refunds (once per refund id).
CREATE TABLE orders (
    brand_id             text        NOT NULL,
    order_id             text        NOT NULL,
    shop_id              text        NOT NULL,
    account_id           text        NOT NULL,
    paid_cents           bigint      NOT NULL CHECK (paid_cents > 0),
    refunded_cents       bigint      NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0),
    paid_at              timestamptz NOT NULL,
    return_window_end_at timestamptz,
    PRIMARY KEY (brand_id, order_id),
    CHECK (refunded_cents <= paid_cents)
);
CREATE INDEX orders_for_growth ON orders (brand_id, account_id, paid_at);

CREATE TABLE order_refunds (
    brand_id       text        NOT NULL,
    refund_id      text        NOT NULL,
    order_id       text        NOT NULL,
    refunded_cents bigint      NOT NULL CHECK (refunded_cents > 0),
    refunded_at    timestamptz NOT NULL,
    PRIMARY KEY (brand_id, refund_id)
);

-- Marketplace account state: abnormal flag and last active time (drive dormancy).
CREATE TABLE account_states (
    account_id     text PRIMARY KEY,
    abnormal       boolean     NOT NULL DEFAULT false,
    last_active_at timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
