-- Tables of the shared runtime, created in every service's schema.

-- Domain events written in the same transaction as the change they describe.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    event_id    text        NOT NULL UNIQUE,
    topic       text        NOT NULL,
    envelope    bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Events this service's consumers have handled, per consumer group, for de-duplication.
CREATE TABLE processed_events (
    consumer_group text        NOT NULL,
    event_id       text        NOT NULL,
    processed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, event_id)
);

-- First answers of mutating RPCs, keyed by their request_id (AIP-155).
CREATE TABLE idempotency_keys (
    method       text        NOT NULL,
    request_id   text        NOT NULL,
    fingerprint  bytea       NOT NULL,
    response     bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (method, request_id)
);
