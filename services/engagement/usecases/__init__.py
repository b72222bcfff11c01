"""Engagement use cases, one module per concept (see docs/development.md)."""
