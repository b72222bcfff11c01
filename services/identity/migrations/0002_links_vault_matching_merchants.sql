-- Linked external identities: one (kind, scope, external id) belongs to at most one account.
CREATE TABLE linked_identities (
    kind        text        NOT NULL,
    scope       text        NOT NULL DEFAULT '',
    external_id text        NOT NULL,
    account_id  text        NOT NULL REFERENCES accounts (account_id),
    linked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, scope, external_id)
);
-- An account holds one identity of each kind per scope.
CREATE UNIQUE INDEX linked_identities_one_per_account
    ON linked_identities (account_id, kind, scope);

-- Every link and unlink, kept for audit.
CREATE TABLE identity_link_history (
    id          bigserial PRIMARY KEY,
    account_id  text        NOT NULL,
    kind        text        NOT NULL,
    scope       text        NOT NULL,
    external_id text        NOT NULL,
    action      text        NOT NULL CHECK (action IN ('linked', 'unlinked')),
    reason      text        NOT NULL DEFAULT '',
    occurred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX identity_link_history_by_account ON identity_link_history (account_id, id);

-- Phone vault: AES-256-GCM ciphertext of the E.164 number; key_version names the key.
CREATE TABLE phone_vault (
    account_id  text PRIMARY KEY REFERENCES accounts (account_id),
    key_version text        NOT NULL,
    nonce       bytea       NOT NULL,
    ciphertext  bytea       NOT NULL,
    -- Keyed (platform pepper) hash of the number: "has it changed" without decrypting.
    fingerprint bytea       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Audit of plaintext reveals (never the number itself).
CREATE TABLE phone_reveals (
    id          bigserial PRIMARY KEY,
    account_id  text        NOT NULL,
    brand_id    text        NOT NULL,
    purpose     text        NOT NULL,
    message_id  text        NOT NULL DEFAULT '',
    revealed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX phone_reveals_by_account ON phone_reveals (account_id, revealed_at);

-- A connected brand's existing members: its HMAC of the phone -> its CRM member id.
CREATE TABLE crm_phone_index (
    brand_id      text  NOT NULL,
    phone_hash    bytea NOT NULL,
    crm_member_id text  NOT NULL,
    import_id     text  NOT NULL,
    PRIMARY KEY (brand_id, phone_hash)
);

CREATE TABLE phone_match_imports (
    import_id       text PRIMARY KEY,
    brand_id        text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('receiving', 'completed')),
    expected_rows   bigint      NOT NULL DEFAULT 0,
    lines_received  bigint      NOT NULL DEFAULT 0,
    accepted_rows   bigint      NOT NULL DEFAULT 0,
    rejected_rows   bigint      NOT NULL DEFAULT 0,
    chunks_received integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz
);
CREATE INDEX phone_match_imports_by_brand ON phone_match_imports (brand_id, created_at);

CREATE TABLE phone_match_import_errors (
    import_id text   NOT NULL REFERENCES phone_match_imports (import_id),
    line      bigint NOT NULL,
    reason    text   NOT NULL,
    message   text   NOT NULL,
    PRIMARY KEY (import_id, line)
);

-- People of one brand who use the merchant console.
CREATE TABLE merchant_users (
    merchant_user_id text PRIMARY KEY,
    brand_id         text        NOT NULL,
    login_name       text        NOT NULL UNIQUE,
    display_name     text        NOT NULL,
    password_hash    text        NOT NULL DEFAULT '',
    disabled_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX merchant_users_by_brand ON merchant_users (brand_id, merchant_user_id);
