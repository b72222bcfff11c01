CREATE TABLE activities (
    activity_id text PRIMARY KEY,
    brand_id    text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('sign_in', 'lottery', 'vote', 'quiz', 'invite')),
    state       text        NOT NULL CHECK (state IN ('draft', 'scheduled', 'live', 'closed')),
    title       text        NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX activities_by_brand_newest ON activities (brand_id, created_at DESC, activity_id DESC);
