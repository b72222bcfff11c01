CREATE TABLE brands (
    brand_id     text PRIMARY KEY,
    display_name text        NOT NULL,
    mode         text        NOT NULL CHECK (mode IN ('connected', 'non_connected')),
    time_zone    text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE shops (
    shop_id      text PRIMARY KEY,
    brand_id     text        NOT NULL REFERENCES brands (brand_id),
    display_name text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shops_by_brand ON shops (brand_id);

-- One row per membership period; a shopper has at most one live membership per brand.
CREATE TABLE members (
    member_id          text PRIMARY KEY,
    brand_id           text        NOT NULL REFERENCES brands (brand_id),
    account_id         text        NOT NULL,
    status             text        NOT NULL CHECK (status IN ('lv0', 'card_member', 'ended')),
    level              integer     NOT NULL DEFAULT 0,
    source_channel     text        NOT NULL,
    member_since       timestamptz NOT NULL,
    lv0_notice_pending boolean     NOT NULL DEFAULT false,
    ended_at           timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX members_live_by_brand_account
    ON members (brand_id, account_id) WHERE status <> 'ended';

CREATE TABLE follows (
    brand_id    text        NOT NULL,
    shop_id     text        NOT NULL REFERENCES shops (shop_id),
    account_id  text        NOT NULL,
    followed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shop_id, account_id)
);
CREATE INDEX follows_by_brand_account ON follows (brand_id, account_id);
