-- One points account per (brand, member account); balances are kept equal to the ledger.
CREATE TABLE points_accounts (
    brand_id   text        NOT NULL,
    account_id text        NOT NULL,
    available  bigint      NOT NULL DEFAULT 0,
    pending    bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (brand_id, account_id)
);
