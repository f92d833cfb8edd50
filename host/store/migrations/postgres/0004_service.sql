-- The service face: API tokens (only their hash is kept), idempotency keys
-- of API-filed requests, signed audit heads, webhook cursors, and the
-- component each system's plan was made with (for certificates).
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);

CREATE TABLE idempotency_keys (
    key_hash TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE audit_signatures (
    seq BIGINT PRIMARY KEY,
    hash TEXT NOT NULL,
    signed_at BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);

CREATE TABLE webhook_cursors (
    name TEXT PRIMARY KEY,
    last_event_id BIGINT NOT NULL,
    failures BIGINT NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at BIGINT NOT NULL
);

ALTER TABLE request_systems ADD COLUMN component_sha256 TEXT;

CREATE TABLE certificates (
    request_id TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    signature TEXT NOT NULL,
    issued_at BIGINT NOT NULL
);
