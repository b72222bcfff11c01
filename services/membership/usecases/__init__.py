"""Membership use cases, one module per concept. Each runs inside the caller's transaction
(evaluation opens its own) and writes its events to the outbox in that same transaction."""
