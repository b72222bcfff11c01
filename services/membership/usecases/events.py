"""Where membership's events go: the outbox topic they are relayed to, and their producer."""

TOPIC = "membership"
PRODUCER = "membership"
