"""Messaging's use cases, one module per concept.

inbox, channels (with policy and consent), templates, messages (single sends, receipts),
campaigns, journeys (definitions and report), journey_entry (entering members, the daily
scheduler), journey_runner (advancing runs), membership_events (what messaging does on a
membership event), dispatch (the dispatcher and campaign fan-out loops), status_events
(messaging's own outbox events).
"""
