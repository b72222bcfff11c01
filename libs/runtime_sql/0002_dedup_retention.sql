-- idempotency_keys and processed_events are pruned by age (libs/retention.py): index the age.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
CREATE INDEX processed_events_processed_at ON processed_events (processed_at);
