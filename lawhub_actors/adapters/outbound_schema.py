"""Tables of outbound messages and the dead-letter queue (created by the store).

An outbound message is a row of ``messages`` (direction ``out``, sealed
content, Meta's status) plus its sending state here (the states and their
moves: :mod:`lawhub_actors.core.send_lifecycle`).
"""

OUTBOUND_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbound (
    id TEXT PRIMARY KEY,                -- = messages.id (the sealed content lives there)
    tenant TEXT NOT NULL,
    phone_number_id TEXT NOT NULL,
    recipient TEXT NOT NULL,            -- the customer's ref (a keyed hash), never the number
    key_id TEXT,
    number BLOB,                        -- sealed: the recipient's number, for Meta
    client_ref TEXT,                    -- the caller's: a repeat returns the same id
    state TEXT NOT NULL,                -- pending | sending | sent | unknown | dead | discarded
    attempts INTEGER NOT NULL DEFAULT 0,
    last_code INTEGER,                  -- Meta's error.code for the last failed attempt
    automatic INTEGER NOT NULL DEFAULT 0,
    business_initiated INTEGER NOT NULL,  -- counts one user in the number's tier
    accepted_at REAL NOT NULL,
    UNIQUE (tenant, client_ref)
);
CREATE INDEX IF NOT EXISTS outbound_tier
    ON outbound (phone_number_id, business_initiated, accepted_at);
CREATE INDEX IF NOT EXISTS outbound_state ON outbound (state, accepted_at);
CREATE INDEX IF NOT EXISTS outbound_recipient ON outbound (tenant, recipient, state);
CREATE TABLE IF NOT EXISTS dlq (
    id TEXT PRIMARY KEY,                -- the outbound message
    tenant TEXT NOT NULL,
    at REAL NOT NULL,
    reason TEXT NOT NULL,               -- terminal | retries_exhausted | processing_failed
    error TEXT                          -- Meta's error (JSON: status, code, title, message)
);
"""
