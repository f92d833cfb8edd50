-- oubli store, version 1 (SQLite). Keep in step with ../postgres/0001_init.sql:
-- the same tables and columns, each engine's own types.
-- Personal data lives only in *_sealed columns (AES-256-GCM under the
-- request's data key, bound to table, column and row); lookups go through
-- blind indexes (HMAC-SHA-256 under the keyring's index key).

CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    subject_sealed BLOB NOT NULL,
    params_sealed BLOB,
    policy TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    approved_by TEXT,
    attested_by TEXT,
    received_at INTEGER NOT NULL,
    due_at INTEGER NOT NULL,
    extended_months INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    finalized_at INTEGER,
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
    plan_sealed BLOB,
    result_sealed BLOB,
    error_kind TEXT,
    error_sealed BLOB,
    counts TEXT NOT NULL DEFAULT '{}',
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (request_id, system)
);

CREATE TABLE tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    system TEXT NOT NULL,
    operation TEXT NOT NULL,
    stage TEXT NOT NULL,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    polls INTEGER NOT NULL DEFAULT 0,
    scheduled_at INTEGER NOT NULL,
    lease_token TEXT,
    lease_expires_at INTEGER,
    attempted_by TEXT,
    ticket_sealed BLOB,
    error_kind TEXT,
    error_sealed BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finalized_at INTEGER,
    UNIQUE (request_id, system, operation)
);
CREATE INDEX tasks_ready ON tasks (state, scheduled_at);
CREATE INDEX tasks_request ON tasks (request_id);

CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT,
    system TEXT,
    reason_sealed BLOB
);
CREATE INDEX events_request ON events (request_id, id);

CREATE TABLE data_keys (
    request_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    kek_id TEXT NOT NULL,
    wrapped TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (request_id, key_id)
);

CREATE TABLE shredded (
    request_id TEXT PRIMARY KEY,
    at INTEGER NOT NULL
);

CREATE TABLE restrictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hash TEXT NOT NULL,
    scope TEXT NOT NULL,
    request_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    lifted_at INTEGER
);
CREATE INDEX restrictions_hash ON restrictions (hash);
