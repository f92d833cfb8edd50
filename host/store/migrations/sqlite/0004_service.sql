-- The service face: API tokens (only their hash is kept), idempotency keys
-- of API-filed requests, signed audit heads, webhook cursors, and the
-- component each system's plan was made with (for certificates).
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
);

CREATE TABLE idempotency_keys (
    key_hash TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE audit_signatures (
    seq INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    signed_at INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);

CREATE TABLE webhook_cursors (
    name TEXT PRIMARY KEY,
    last_event_id INTEGER NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at INTEGER NOT NULL
);

ALTER TABLE request_systems ADD COLUMN component_sha256 TEXT;

CREATE TABLE certificates (
    request_id TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    signature TEXT NOT NULL,
    issued_at INTEGER NOT NULL
);
