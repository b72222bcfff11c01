-- Open platform (ISV) apps and the shops' authorisations of them.
-- The app secret is encrypted (AES-GCM, key id kept beside it) because MD5 request signatures can
-- only be verified with the plaintext; codes and tokens are stored as SHA-256 hashes only.
CREATE TABLE isv_apps (
    app_key           text PRIMARY KEY,
    name              text        NOT NULL,
    status            text        NOT NULL CHECK (status IN ('test', 'production', 'suspended')),
    scopes            text[]      NOT NULL,
    redirect_uri      text        NOT NULL,
    secret_key_id     text        NOT NULL,
    secret_nonce      bytea       NOT NULL,
    secret_ciphertext bytea       NOT NULL,
    calls_per_minute  integer     NOT NULL CHECK (calls_per_minute > 0),
    calls_per_day     integer     NOT NULL CHECK (calls_per_day > 0),
    -- CreateApp's idempotency is kept here rather than in idempotency_keys, whose stored
    -- answer would hold the plaintext secret.
    request_id        text        NOT NULL UNIQUE,
    request_hash      bytea       NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- One live authorisation per (app, shop); a revoked one stays as history.
CREATE TABLE isv_authorizations (
    authorization_id text PRIMARY KEY,
    app_key          text        NOT NULL REFERENCES isv_apps (app_key),
    brand_id         text        NOT NULL,
    shop_id          text        NOT NULL,
    scopes           text[]      NOT NULL,
    granted_by       text        NOT NULL,
    granted_at       timestamptz NOT NULL DEFAULT now(),
    revoked_at       timestamptz
);
CREATE UNIQUE INDEX isv_authorizations_live
    ON isv_authorizations (app_key, shop_id) WHERE revoked_at IS NULL;
CREATE INDEX isv_authorizations_by_brand ON isv_authorizations (brand_id, granted_at DESC);

CREATE TABLE isv_codes (
    code_hash        bytea PRIMARY KEY,
    authorization_id text        NOT NULL REFERENCES isv_authorizations (authorization_id),
    redirect_uri     text        NOT NULL,
    expires_at       timestamptz NOT NULL,
    used_at          timestamptz
);

-- kind: 'access' or 'refresh'; a refresh voids the pair it replaces.
CREATE TABLE isv_tokens (
    token_hash       bytea PRIMARY KEY,
    kind             text        NOT NULL CHECK (kind IN ('access', 'refresh')),
    authorization_id text        NOT NULL REFERENCES isv_authorizations (authorization_id),
    pair_id          text        NOT NULL,
    expires_at       timestamptz NOT NULL,
    revoked_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX isv_tokens_by_authorization ON isv_tokens (authorization_id);
CREATE INDEX isv_tokens_by_pair ON isv_tokens (pair_id);
