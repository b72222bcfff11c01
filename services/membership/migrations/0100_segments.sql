-- Segments and their snapshots (issue 8), and indexes for segment counts over many members.

CREATE TABLE segments (
    segment_id text PRIMARY KEY,
    brand_id   text        NOT NULL,
    name       text        NOT NULL,
    rule       jsonb       NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX segments_by_brand ON segments (brand_id, created_at, segment_id);

CREATE TABLE segment_snapshots (
    snapshot_id  text PRIMARY KEY,
    brand_id     text        NOT NULL,
    segment_id   text        NOT NULL REFERENCES segments (segment_id),
    member_count bigint      NOT NULL,
    created_at   timestamptz NOT NULL
);

-- The members a segment matched at snapshot time, with what templates may personalise with.
CREATE TABLE segment_snapshot_members (
    snapshot_id    text    NOT NULL REFERENCES segment_snapshots (snapshot_id),
    account_id     text    NOT NULL,
    level          integer NOT NULL,
    points_balance bigint  NOT NULL,
    order_count    integer NOT NULL,
    PRIMARY KEY (snapshot_id, account_id)
);

-- Valid members of a brand by the attributes segments filter on most; counts scan these
-- instead of the wide member rows.
CREATE INDEX members_valid_segment
    ON members (brand_id, level, gender, birthday, joined_at, account_id)
    WHERE status <> 'ended' AND NOT dormant;
CREATE INDEX member_stats_by_paid ON member_stats (brand_id, paid_cents, account_id);
CREATE INDEX member_points_by_balance ON member_points (brand_id, available, account_id);
