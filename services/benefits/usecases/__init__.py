"""Benefits use cases. Each runs inside the caller's transaction and writes its events to the
outbox in that same transaction."""
