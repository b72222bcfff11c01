-- What each service erased or pseudonymised when a member cancelled (libs/privacy.py): one row
-- per cancellation (the ended membership's member_id), read back as the brand's erasure report.
-- It keeps the opaque account id and nothing else about the member: the brand must be able to
-- show that, and when, the request was honoured.
CREATE TABLE member_erasures (
    brand_id     text        NOT NULL,
    member_id    text        NOT NULL,
    account_id   text        NOT NULL,
    event_id     text        NOT NULL,
    cancelled_at timestamptz NOT NULL,
    erased_at    timestamptz NOT NULL,
    removals     jsonb       NOT NULL,
    PRIMARY KEY (brand_id, member_id)
);
CREATE INDEX member_erasures_by_account ON member_erasures (brand_id, account_id, erased_at DESC);
