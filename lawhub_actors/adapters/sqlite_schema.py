"""The store's tables (SQLite DDL): customers, messages, statuses, feed
events, audit entries, quarantine, cursors, media outcomes, and the
cluster's nodes and partition leases. ``Store``
creates them, and the outbound tables of :mod:`outbound_schema`, at open.

Every effect has a unique key — ``(tenant, wamid)`` for messages,
``(tenant, wamid, status)`` for statuses, ``source`` for audit entries,
``(tenant, message_id)`` for media outcomes — so a replayed journal entry
finds its rows already there. Sealed columns (``profile``, ``content``,
``raw``, ``data``) hold AES-256-GCM blobs beside their ``key_id``.
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    tenant TEXT NOT NULL,
    customer TEXT NOT NULL,             -- the customer's ref (Tx.ref), never the number
    kind TEXT NOT NULL,                 -- lead | client
    consent TEXT NOT NULL,              -- unknown | granted | opted_out
    created_at REAL NOT NULL,
    last_inbound_at REAL,
    key_id TEXT,
    profile BLOB,                       -- sealed {"name": ..., "number": ...}
    PRIMARY KEY (tenant, customer)
);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    customer TEXT NOT NULL,
    conv_seq INTEGER NOT NULL,
    direction TEXT NOT NULL,            -- in | out
    wamid TEXT,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    status_error TEXT,                  -- Meta's error of a failed outbound message (JSON)
    created_at REAL NOT NULL,
    sent_at INTEGER,
    journal_seq INTEGER,
    key_id TEXT NOT NULL,
    content BLOB NOT NULL,              -- sealed {"text", "media", "details", ...}
    UNIQUE (tenant, wamid),
    UNIQUE (tenant, customer, conv_seq)
);
CREATE TABLE IF NOT EXISTS statuses (
    tenant TEXT NOT NULL,
    wamid TEXT NOT NULL,
    status TEXT NOT NULL,
    at INTEGER NOT NULL,
    received_at REAL NOT NULL,
    key_id TEXT NOT NULL,
    raw BLOB NOT NULL,                  -- sealed status with errors and pricing (billing)
    PRIMARY KEY (tenant, wamid, status)
);
CREATE TABLE IF NOT EXISTS events (
    tenant TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    at REAL NOT NULL,
    key_id TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (tenant, seq)
);
CREATE TABLE IF NOT EXISTS tenant_seq (tenant TEXT PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    source TEXT PRIMARY KEY,            -- idempotency key of what caused it
    tenant TEXT NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    key_id TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    id TEXT PRIMARY KEY,
    at REAL NOT NULL,
    journal_seq INTEGER,
    phone_number_id TEXT,
    reason TEXT NOT NULL,
    key_id TEXT NOT NULL,
    data BLOB NOT NULL,
    UNIQUE (journal_seq, phone_number_id, reason, id)
);
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS media (
    tenant TEXT NOT NULL,
    message_id TEXT NOT NULL,
    verdict TEXT NOT NULL,              -- clean | infected | refused | unavailable
    reason TEXT,                        -- signature, refusal or unavailability reason
    shelf TEXT,                         -- clean | quarantine: where the sealed file is kept
    ref TEXT UNIQUE,                    -- the file's name on its shelf, if one was kept
    mime_type TEXT,                     -- the sniffed type of the kept bytes
    size INTEGER,
    scanner TEXT NOT NULL,              -- clamd | builtin
    at REAL NOT NULL,
    PRIMARY KEY (tenant, message_id)
);
CREATE TABLE IF NOT EXISTS nodes (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS conversation_seq (
    tenant TEXT NOT NULL,
    customer TEXT NOT NULL,             -- the customer's ref
    last INTEGER NOT NULL,              -- the conversation's last messages.conv_seq
    PRIMARY KEY (tenant, customer)
);
CREATE TABLE IF NOT EXISTS config_versions (
    version INTEGER PRIMARY KEY,        -- every node runs the highest
    at REAL NOT NULL,
    by TEXT NOT NULL,
    via TEXT NOT NULL,
    key_id TEXT NOT NULL,
    text BLOB NOT NULL                  -- sealed: the TOML as applied
);
CREATE TABLE IF NOT EXISTS partitions (
    id INTEGER PRIMARY KEY,
    owner TEXT,                         -- a node's id, NULL when free
    epoch INTEGER NOT NULL,             -- +1 at every change of owner (fencing)
    lease_until REAL NOT NULL,
    cursor INTEGER NOT NULL             -- every journal entry up to it is processed here
);
"""
