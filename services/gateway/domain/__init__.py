"""Gateway rules, free of I/O: who the caller is and what they may reach."""
