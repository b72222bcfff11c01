"""Points and benefits rules, free of I/O."""
