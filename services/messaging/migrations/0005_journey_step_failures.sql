-- A journey step that fails (issue 11 §3): transient failures are retried with backoff a
-- bounded number of times (attempts), then, like a permanent failure at once, the run stops
-- as 'failed' with the reason (last_error) at the step that failed, shown in the journey's
-- report. Nothing retries a failed run.
ALTER TABLE journey_runs DROP CONSTRAINT journey_runs_status_check;
ALTER TABLE journey_runs ADD CONSTRAINT journey_runs_status_check
    CHECK (status IN ('active', 'exited', 'failed'));
ALTER TABLE journey_runs
    ADD COLUMN attempts   integer NOT NULL DEFAULT 0,
    ADD COLUMN last_error text    NOT NULL DEFAULT '';
CREATE INDEX journey_runs_failed ON journey_runs (journey_id, exited_at DESC)
    WHERE status = 'failed';
