"""Identity rules, free of I/O: accounts and signed tokens."""
