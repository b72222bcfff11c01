"""The open platform's use cases: apps (apps.py) and merchants' authorisations of them with
their codes and tokens (authorizations.py)."""
