"""Messaging rules, free of I/O: the message box, consent and sending."""
