"""Identity's use cases, one module per concept: accounts, linked identities, the phone vault,
phone matching with brands' CRM exports, merchant users, and session tokens.

Each RPC is one coroutine here that owns its whole flow over an `IdentityContext`: it opens
its connection or transaction, or hands a mutation's work to the `CommitOnce` it is given (one
transaction per request_id); the servicer only translates protobuf and errors.
"""
