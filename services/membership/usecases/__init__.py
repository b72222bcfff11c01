"""Membership use cases, one module per concept. Each RPC is one coroutine here that owns its
whole flow (connection or transaction, remote calls, events written to the outbox in the same
transaction as the change, cached cards dropped after the commit); helpers named `existing_*`
or `configured_*` run inside the caller's transaction."""
