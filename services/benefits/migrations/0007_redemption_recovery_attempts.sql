-- A redemption the recovery loop cannot carry on (issue 11 §3): each failed pass is counted,
-- and after a bounded number the redemption ends 'failed' with the reason, its points given
-- back, instead of being tried every few seconds forever.
ALTER TABLE redemptions
    ADD COLUMN recovery_attempts integer NOT NULL DEFAULT 0;
