"""Membership rules, free of I/O: what a follow, an unfollow and a card mean."""
