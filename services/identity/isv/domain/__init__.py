"""Open-platform rules, free of I/O: apps, scopes, authorisations, tokens, sealed secrets."""
