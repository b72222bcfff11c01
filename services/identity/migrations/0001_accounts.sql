CREATE TABLE accounts (
    account_id             text PRIMARY KEY,
    marketplace_account_id text        NOT NULL UNIQUE,
    created_at             timestamptz NOT NULL DEFAULT now()
);
