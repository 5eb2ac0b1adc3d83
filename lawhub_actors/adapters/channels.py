"""What nodes tell each other, by channel (PostgreSQL NOTIFY; one node
alone has no one to tell). Payloads are space-separated words."""

FEED = "lawhub_feed"
"""``node tenant seq``: a node committed the tenant's feed events up to ``seq``."""
SENDS = "lawhub_sends"
"""``partition message_id``: a node accepted a message for a partition it does not hold."""
CONFIG = "lawhub_config"
"""``version``: a node applied and stored a new configuration version."""
