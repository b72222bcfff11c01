CREATE TABLE inbox_messages (
    message_id text PRIMARY KEY,
    brand_id   text        NOT NULL,
    account_id text        NOT NULL,
    title      text        NOT NULL,
    body       text        NOT NULL,
    read_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbox_by_member_newest
    ON inbox_messages (brand_id, account_id, created_at DESC, message_id DESC);
