"""Identity's use cases, one module per concept: accounts, linked identities, the phone vault,
phone matching with brands' CRM exports, merchant users, and session tokens.

Each use case runs on the connection (or in the transaction) its caller opened and owns the
rest of its flow; the servicer only translates protobuf and errors.
"""
