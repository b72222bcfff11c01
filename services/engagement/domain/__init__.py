"""Engagement rules, free of I/O: activities and their life cycle."""
