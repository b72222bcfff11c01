-- Activities: owner, full definition, life cycle; participation in each kind of activity.

ALTER TABLE activities
    ADD COLUMN owner_kind  text        NOT NULL DEFAULT 'brand'
        CHECK (owner_kind IN ('brand', 'isv_app')),
    ADD COLUMN owner_id    text        NOT NULL DEFAULT '',
    ADD COLUMN spec        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN version     integer     NOT NULL DEFAULT 1,
    ADD COLUMN updated_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN closed_at   timestamptz;
-- The stored state is what the owner decided (draft, scheduled = published, closed);
-- live and closed-by-time are derived from the window when read.
CREATE INDEX activities_by_brand_window ON activities (brand_id, starts_at, ends_at);

-- One row per member per local day: the unique key decides "once per day".
CREATE TABLE sign_ins (
    brand_id    text        NOT NULL,
    activity_id text        NOT NULL REFERENCES activities (activity_id),
    account_id  text        NOT NULL,
    local_date  date        NOT NULL,
    streak_days integer     NOT NULL CHECK (streak_days >= 1),
    make_up     boolean     NOT NULL DEFAULT false,
    cost_points integer     NOT NULL DEFAULT 0,
    signed_at   timestamptz NOT NULL,
    grant_ids   text[]      NOT NULL DEFAULT '{}',
    PRIMARY KEY (activity_id, account_id, local_date)
);

-- Rewards owed through the benefits service; request_id is the idempotency key there.
-- Written in the same transaction as what earned them, then granted (and retried) until done.
CREATE TABLE reward_grants (
    grant_id           text PRIMARY KEY,
    brand_id           text        NOT NULL,
    account_id         text        NOT NULL,
    points             integer     NOT NULL DEFAULT 0 CHECK (points >= 0),
    coupon_template_id text        NOT NULL DEFAULT '',
    reason_code        text        NOT NULL,
    state              text        NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'done', 'failed')),
    attempts           integer     NOT NULL DEFAULT 0,
    last_error         text        NOT NULL DEFAULT '',
    points_entry_id    text        NOT NULL DEFAULT '',
    coupon_id          text        NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reward_grants_due ON reward_grants (next_attempt_at) WHERE state = 'pending';

-- Lottery prizes; won counts the wins recorded here (the source of truth for stock).
CREATE TABLE lottery_prizes (
    activity_id        text    NOT NULL REFERENCES activities (activity_id),
    prize_id           text    NOT NULL,
    brand_id           text    NOT NULL,
    position           integer NOT NULL,
    stock              integer NOT NULL CHECK (stock >= 0),
    won                integer NOT NULL DEFAULT 0,
    PRIMARY KEY (activity_id, prize_id),
    CHECK (won <= stock)
);

-- Every draw that happened, with the randomness it used.
CREATE TABLE lottery_draws (
    draw_id          text PRIMARY KEY,
    brand_id         text        NOT NULL,
    activity_id      text        NOT NULL REFERENCES activities (activity_id),
    account_id       text        NOT NULL,
    local_date       date        NOT NULL,
    picked_prize_id  text        NOT NULL,
    won_prize_id     text,
    random_value     bigint      NOT NULL,
    total_weight     bigint      NOT NULL,
    weights          text        NOT NULL,
    cost_points      integer     NOT NULL DEFAULT 0,
    grant_id         text,
    drawn_at         timestamptz NOT NULL
);
CREATE INDEX lottery_draws_by_member ON lottery_draws (activity_id, account_id, local_date);
CREATE INDEX lottery_draws_by_activity ON lottery_draws (activity_id, drawn_at DESC, draw_id DESC);

-- The draw saga: spend -> draw -> record -> grant, with compensation; recovered after a crash.
CREATE TABLE draw_sagas (
    saga_id         text PRIMARY KEY,          -- also the draw id
    brand_id        text        NOT NULL,
    activity_id     text        NOT NULL,
    account_id      text        NOT NULL,
    request_id      text        NOT NULL,
    local_date      date        NOT NULL,
    cost_points     integer     NOT NULL,
    state           text        NOT NULL
        CHECK (state IN ('started', 'spent', 'recorded', 'compensating', 'compensated',
                         'failed', 'completed')),
    spend_entry_id  text        NOT NULL DEFAULT '',
    failure_reason  text        NOT NULL DEFAULT '',
    attempts        integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (activity_id, request_id)
);
CREATE INDEX draw_sagas_unfinished ON draw_sagas (updated_at)
    WHERE state IN ('started', 'spent', 'recorded', 'compensating');

-- Koi draws: the commitment is public from creation, the seed only after entries close.
CREATE TABLE koi_draws (
    activity_id     text PRIMARY KEY REFERENCES activities (activity_id),
    brand_id        text        NOT NULL,
    seed            bytea       NOT NULL,
    commitment      text        NOT NULL,
    revealed_at     timestamptz,
    winners         text[]      NOT NULL DEFAULT '{}'
);

CREATE TABLE koi_entries (
    activity_id text        NOT NULL REFERENCES koi_draws (activity_id),
    account_id  text        NOT NULL,
    entered_at  timestamptz NOT NULL,
    PRIMARY KEY (activity_id, account_id)
);

-- Votes: seq (1..votes_per_day) under the unique key caps a member's votes per day.
CREATE TABLE votes (
    brand_id    text        NOT NULL,
    activity_id text        NOT NULL REFERENCES activities (activity_id),
    account_id  text        NOT NULL,
    local_date  date        NOT NULL,
    seq         integer     NOT NULL,
    option_id   text        NOT NULL,
    voted_at    timestamptz NOT NULL,
    PRIMARY KEY (activity_id, account_id, local_date, seq)
);

CREATE TABLE vote_tallies (
    activity_id text   NOT NULL REFERENCES activities (activity_id),
    option_id   text   NOT NULL,
    votes       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (activity_id, option_id)
);

CREATE TABLE quiz_attempts (
    brand_id        text        NOT NULL,
    activity_id     text        NOT NULL REFERENCES activities (activity_id),
    account_id      text        NOT NULL,
    attempt         integer     NOT NULL,
    answers         jsonb       NOT NULL,
    correct_answers integer     NOT NULL,
    points_awarded  integer     NOT NULL,
    grant_id        text,
    submitted_at    timestamptz NOT NULL,
    PRIMARY KEY (activity_id, account_id, attempt)
);

CREATE TABLE invite_codes (
    code        text PRIMARY KEY,
    brand_id    text        NOT NULL,
    activity_id text        NOT NULL REFERENCES activities (activity_id),
    account_id  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (activity_id, account_id)
);

-- One reward per invitee per brand, whatever code or activity brought them.
CREATE TABLE invites (
    brand_id           text        NOT NULL,
    invitee_account_id text        NOT NULL,
    activity_id        text        NOT NULL REFERENCES activities (activity_id),
    inviter_account_id text        NOT NULL,
    code               text        NOT NULL,
    inviter_rewarded   boolean     NOT NULL,
    accepted_at        timestamptz NOT NULL,
    PRIMARY KEY (brand_id, invitee_account_id)
);
CREATE INDEX invites_by_inviter ON invites (activity_id, inviter_account_id, accepted_at);
