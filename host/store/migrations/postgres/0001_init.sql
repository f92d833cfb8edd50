-- oubli store, version 1 (PostgreSQL). Keep in step with ../sqlite/0001_init.sql:
-- the same tables and columns, each engine's own types.
-- Personal data lives only in *_sealed columns (AES-256-GCM under the
-- request's data key, bound to table, column and row); lookups go through
-- blind indexes (HMAC-SHA-256 under the keyring's index key).

CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    subject_sealed BYTEA NOT NULL,
    params_sealed BYTEA,
    policy TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    approved_by TEXT,
    attested_by TEXT,
    received_at BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    extended_months BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    finalized_at BIGINT,
    summary TEXT
);
CREATE INDEX requests_state ON requests (state, due_at);

CREATE TABLE subject_index (
    hash TEXT NOT NULL,
    request_id TEXT NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    PRIMARY KEY (hash, request_id)
);

CREATE TABLE request_systems (
    request_id TEXT NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    system TEXT NOT NULL,
    state TEXT NOT NULL,
    connector TEXT,
    plan_sealed BYTEA,
    result_sealed BYTEA,
    error_kind TEXT,
    error_sealed BYTEA,
    counts TEXT NOT NULL DEFAULT '{}',
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (request_id, system)
);

CREATE TABLE tasks (
    id BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    system TEXT NOT NULL,
    operation TEXT NOT NULL,
    stage TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    polls BIGINT NOT NULL DEFAULT 0,
    scheduled_at BIGINT NOT NULL,
    lease_token TEXT,
    lease_expires_at BIGINT,
    attempted_by TEXT,
    ticket_sealed BYTEA,
    error_kind TEXT,
    error_sealed BYTEA,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finalized_at BIGINT,
    UNIQUE (request_id, system, operation)
);
CREATE INDEX tasks_ready ON tasks (state, scheduled_at);
CREATE INDEX tasks_request ON tasks (request_id);

CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT,
    system TEXT,
    reason_sealed BYTEA
);
CREATE INDEX events_request ON events (request_id, id);

CREATE TABLE data_keys (
    request_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    kek_id TEXT NOT NULL,
    wrapped TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (request_id, key_id)
);

CREATE TABLE shredded (
    request_id TEXT PRIMARY KEY,
    at BIGINT NOT NULL
);

CREATE TABLE restrictions (
    id BIGSERIAL PRIMARY KEY,
    hash TEXT NOT NULL,
    scope TEXT NOT NULL,
    request_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    lifted_at BIGINT
);
CREATE INDEX restrictions_hash ON restrictions (hash);
