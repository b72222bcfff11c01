-- Channels, consent, governance, outbound messages, campaigns and journeys (issue 8).

ALTER TABLE inbox_messages
    ADD COLUMN outbound_message_id text,
    ADD COLUMN campaign_id         text;
CREATE UNIQUE INDEX inbox_by_outbound_message
    ON inbox_messages (outbound_message_id) WHERE outbound_message_id IS NOT NULL;
CREATE INDEX inbox_unread_by_member
    ON inbox_messages (brand_id, account_id) WHERE read_at IS NULL;

-- A brand's provider per channel; credentials are AES-GCM sealed (nonce || ciphertext).
CREATE TABLE channel_configs (
    brand_id         text        NOT NULL,
    channel          text        NOT NULL CHECK (channel IN ('sms', 'wechat')),
    provider         text        NOT NULL,
    settings         jsonb       NOT NULL DEFAULT '{}',
    credential_names text[]      NOT NULL DEFAULT '{}',
    credentials      bytea       NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (brand_id, channel)
);

CREATE TABLE messaging_policies (
    brand_id           text PRIMARY KEY,
    daily_cap          integer     NOT NULL DEFAULT 0,
    weekly_cap         integer     NOT NULL DEFAULT 0,
    quiet_start_minute integer     NOT NULL DEFAULT 0,
    quiet_end_minute   integer     NOT NULL DEFAULT 0,
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE consents (
    brand_id   text        NOT NULL,
    account_id text        NOT NULL,
    channel    text        NOT NULL,
    purpose    text        NOT NULL CHECK (purpose IN ('service', 'marketing')),
    granted    boolean     NOT NULL,
    source     text        NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (brand_id, account_id, channel, purpose)
);

-- Members who left the program (from MemberCancelled); they get nothing until they rejoin.
CREATE TABLE cancelled_members (
    brand_id     text        NOT NULL,
    account_id   text        NOT NULL,
    cancelled_at timestamptz NOT NULL,
    PRIMARY KEY (brand_id, account_id)
);

-- Paid orders (from OrderPaid), for campaign and journey conversions.
CREATE TABLE member_orders (
    brand_id   text        NOT NULL,
    order_id   text        NOT NULL,
    account_id text        NOT NULL,
    paid_cents bigint      NOT NULL,
    paid_at    timestamptz NOT NULL,
    PRIMARY KEY (brand_id, order_id)
);
CREATE INDEX member_orders_by_account ON member_orders (brand_id, account_id, paid_at);

CREATE TABLE templates (
    template_id            text PRIMARY KEY,
    brand_id               text        NOT NULL,
    channel                text        NOT NULL,
    purpose                text        NOT NULL,
    name                   text        NOT NULL,
    title                  text        NOT NULL,
    body                   text        NOT NULL,
    provider_template_code text        NOT NULL,
    provider_params        jsonb       NOT NULL,
    variables              text[]      NOT NULL,
    custom_variables       text[]      NOT NULL,
    link_url               text        NOT NULL,
    created_at             timestamptz NOT NULL
);
CREATE INDEX templates_by_brand ON templates (brand_id);

CREATE TABLE outbound_messages (
    message_id          text PRIMARY KEY,
    brand_id            text        NOT NULL,
    account_id          text        NOT NULL,
    channel             text        NOT NULL,
    purpose             text        NOT NULL,
    template_id         text        NOT NULL,
    variables           jsonb       NOT NULL,
    campaign_id         text,
    journey_id          text,
    -- One message per (brand, key): "campaign:<id>:<account>", "journey:<run>:<step>", a request id.
    dedupe_key          text        NOT NULL,
    status              text        NOT NULL CHECK (status IN ('queued', 'sending', 'sent',
                                    'delivered', 'read', 'failed', 'suppressed')),
    reason              text        NOT NULL DEFAULT '',
    not_before          timestamptz NOT NULL,
    lease_until         timestamptz,
    attempts            integer     NOT NULL DEFAULT 0,
    deferrals           integer     NOT NULL DEFAULT 0,
    -- A throttled campaign's offset from its start; kept when quiet hours move the message.
    spacing_ms          bigint      NOT NULL DEFAULT 0,
    provider_message_id text,
    -- The cap periods it was counted against (released when it could not go out after all).
    cap_day             date,
    cap_week            date,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    sent_at             timestamptz,
    delivered_at        timestamptz,
    read_at             timestamptz,
    UNIQUE (brand_id, dedupe_key)
);
CREATE INDEX outbound_due ON outbound_messages (not_before) WHERE status IN ('queued', 'sending');
CREATE INDEX outbound_by_campaign ON outbound_messages (campaign_id) WHERE campaign_id IS NOT NULL;
CREATE UNIQUE INDEX outbound_by_provider_id
    ON outbound_messages (channel, provider_message_id) WHERE provider_message_id IS NOT NULL;

-- Marketing messages counted per member, channel and local day / week.
CREATE TABLE cap_counters (
    brand_id     text    NOT NULL,
    account_id   text    NOT NULL,
    channel      text    NOT NULL,
    period       text    NOT NULL CHECK (period IN ('day', 'week')),
    period_start date    NOT NULL,
    used         integer NOT NULL DEFAULT 0,
    PRIMARY KEY (brand_id, account_id, channel, period, period_start)
);

-- What the sandbox provider would have sent (addresses masked).
CREATE TABLE sandbox_deliveries (
    delivery_id    text PRIMARY KEY,
    brand_id       text        NOT NULL,
    channel        text        NOT NULL,
    message_id     text        NOT NULL,
    masked_address text        NOT NULL,
    title          text        NOT NULL,
    body           text        NOT NULL,
    params         jsonb       NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE INDEX sandbox_by_brand ON sandbox_deliveries (brand_id, created_at, delivery_id);

CREATE TABLE campaigns (
    campaign_id            text PRIMARY KEY,
    brand_id               text        NOT NULL,
    name                   text        NOT NULL,
    snapshot_id            text        NOT NULL,
    template_id            text        NOT NULL,
    channel                text        NOT NULL,
    status                 text        NOT NULL,
    variables              jsonb       NOT NULL,
    throttle_per_second    integer     NOT NULL,
    holdout_basis_points   integer     NOT NULL,
    conversion_window_days integer     NOT NULL,
    schedule_at            timestamptz,
    launched_at            timestamptz,
    -- Fan-out progress: the snapshot page token to continue from, and recipients so far.
    fanout_token           text        NOT NULL DEFAULT '',
    fanout_count           integer     NOT NULL DEFAULT 0,
    created_at             timestamptz NOT NULL
);
CREATE INDEX campaigns_due ON campaigns (schedule_at) WHERE status IN ('scheduled', 'running');

CREATE TABLE campaign_recipients (
    campaign_id text    NOT NULL,
    account_id  text    NOT NULL,
    holdout     boolean NOT NULL,
    message_id  text,
    PRIMARY KEY (campaign_id, account_id)
);

CREATE TABLE journeys (
    journey_id             text PRIMARY KEY,
    brand_id               text        NOT NULL,
    name                   text        NOT NULL,
    trigger                text        NOT NULL,
    allow_reentry          boolean     NOT NULL,
    steps                  jsonb       NOT NULL,
    active                 boolean     NOT NULL DEFAULT false,
    conversion_window_days integer     NOT NULL,
    created_at             timestamptz NOT NULL
);
CREATE INDEX journeys_by_trigger ON journeys (brand_id, trigger) WHERE active;

-- One member's walk through a journey; survives restarts (the runner only reads this table).
CREATE TABLE journey_runs (
    run_id          text PRIMARY KEY,
    journey_id      text        NOT NULL,
    brand_id        text        NOT NULL,
    account_id      text        NOT NULL,
    entry_event_id  text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('active', 'exited')),
    current_step_id text        NOT NULL DEFAULT '',
    wake_at         timestamptz,
    facts           jsonb       NOT NULL,
    entered_at      timestamptz NOT NULL,
    exited_at       timestamptz,
    exit_reason     text        NOT NULL DEFAULT '',
    UNIQUE (journey_id, entry_event_id)
);
CREATE INDEX journey_runs_due ON journey_runs (wake_at) WHERE status = 'active';
CREATE INDEX journey_runs_by_member ON journey_runs (journey_id, account_id);
-- Without re-entry a member walks a journey once: enforced here, not only in code.
CREATE TABLE journey_entries (
    journey_id text NOT NULL,
    account_id text NOT NULL,
    PRIMARY KEY (journey_id, account_id)
);
CREATE TABLE journey_refusals (
    journey_id text NOT NULL,
    event_id   text NOT NULL,
    PRIMARY KEY (journey_id, event_id)
);
-- Steps done per run, so a re-run after a crash never repeats a side effect.
CREATE TABLE journey_step_log (
    run_id     text        NOT NULL,
    step_id    text        NOT NULL,
    outcome    text        NOT NULL,
    done_at    timestamptz NOT NULL,
    PRIMARY KEY (run_id, step_id)
);
