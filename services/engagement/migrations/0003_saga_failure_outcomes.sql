-- Every saga step has a defined outcome for failure (issue 11 §3): transient failures are
-- retried a bounded number of times, then the step stops visibly with its reason.

-- A reward grant that cannot be delivered ends 'failed' with last_error (the dead letter the
-- operator lists); when what earned it cost points (a lottery draw), it goes 'compensating'
-- first and the cost is given back (refunded_entry_id) before it ends 'failed'.
ALTER TABLE reward_grants DROP CONSTRAINT reward_grants_state_check;
ALTER TABLE reward_grants ADD CONSTRAINT reward_grants_state_check
    CHECK (state IN ('pending', 'done', 'compensating', 'failed'));
ALTER TABLE reward_grants
    ADD COLUMN refund_entry_id   text NOT NULL DEFAULT '',
    ADD COLUMN refunded_entry_id text NOT NULL DEFAULT '';
DROP INDEX reward_grants_due;
CREATE INDEX reward_grants_due ON reward_grants (next_attempt_at)
    WHERE state IN ('pending', 'compensating');
CREATE INDEX reward_grants_failed ON reward_grants (brand_id, updated_at DESC, grant_id DESC)
    WHERE state = 'failed';

-- A draw whose compensation itself cannot be made ends 'dead_letter' with its reason.
ALTER TABLE draw_sagas DROP CONSTRAINT draw_sagas_state_check;
ALTER TABLE draw_sagas ADD CONSTRAINT draw_sagas_state_check
    CHECK (state IN ('started', 'spent', 'recorded', 'compensating', 'compensated',
                     'failed', 'completed', 'dead_letter'));
CREATE INDEX draw_sagas_dead_letter ON draw_sagas (activity_id) WHERE state = 'dead_letter';
