-- Dashboards (issue 8): dormancy over time. One row per change of a member's `dormant` flag,
-- written in the same transaction as the change, so "valid / dormant at the end of day D"
-- can be answered for any past day.

CREATE TABLE member_dormancy_changes (
    seq        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id   text        NOT NULL,
    member_id  text        NOT NULL,
    account_id text        NOT NULL,
    dormant    boolean     NOT NULL,
    reason     text        NOT NULL,
    changed_at timestamptz NOT NULL
);

-- The state of one member at a time (latest change at or before it), and a brand's changes
-- in a date range.
CREATE INDEX member_dormancy_changes_by_member
    ON member_dormancy_changes (member_id, changed_at DESC, seq DESC);
CREATE INDEX member_dormancy_changes_by_brand
    ON member_dormancy_changes (brand_id, changed_at);

-- Members already dormant before history was kept: their last update is the best known time
-- of the change.
INSERT INTO member_dormancy_changes (brand_id, member_id, account_id, dormant, reason,
                                     changed_at)
SELECT brand_id, member_id, account_id, true, 'BEFORE_HISTORY',
       greatest(member_since, updated_at)
FROM members WHERE dormant AND status <> 'ended';

-- Per-day valid / dormant in the pre-aggregation; rows stored before this migration have
-- NULL here and are recomputed on their next read.
ALTER TABLE dashboard_daily
    ADD COLUMN lv0_dormant  bigint,
    ADD COLUMN card_dormant bigint;
