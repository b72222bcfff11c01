-- Scheduled journey triggers (birthday, repurchase due): the membership segment that selects
-- the members, the trigger's day count, and the last local day the schedule ran.
ALTER TABLE journeys
    ADD COLUMN trigger_days    integer NOT NULL DEFAULT 0,
    ADD COLUMN segment_id      text    NOT NULL DEFAULT '',
    ADD COLUMN scheduled_until date;
