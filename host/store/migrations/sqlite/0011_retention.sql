-- Retention sweeps: one row per run of a policy. A test run lists what
-- would go; an enforcing run carries out an accepted test run with the
-- same cutoff. The cursor is the last record handled, in the connector's
-- order (trigger date, id); `inflight` the page being erased, so a run
-- cut off mid-page takes it up again rather than losing it. The tally
-- holds counts, dates and a sample of references, never content.
CREATE TABLE retention_sweeps (
    id TEXT PRIMARY KEY,
    policy TEXT NOT NULL,
    policy_digest TEXT NOT NULL,
    system TEXT NOT NULL,
    category TEXT NOT NULL,
    trigger_name TEXT NOT NULL,
    action TEXT NOT NULL,
    mode TEXT NOT NULL,
    state TEXT NOT NULL,
    cutoff BIGINT NOT NULL,
    test_of TEXT,
    started_by TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    approved_by TEXT,
    approved_at BIGINT,
    finished_at BIGINT,
    connector TEXT,
    component_sha256 TEXT,
    cursor_at BIGINT,
    cursor_id TEXT,
    inflight TEXT,
    tally TEXT NOT NULL,
    lease_token TEXT,
    lease_until BIGINT,
    note TEXT
);
CREATE INDEX retention_sweeps_policy ON retention_sweeps (policy, started_at);
CREATE INDEX retention_sweeps_state ON retention_sweeps (state, lease_until);
-- What an enforcing run did to each record: only a keyed hash of the
-- reference, with its category, trigger date and the outcome.
CREATE TABLE retention_tombstones (
    sweep_id TEXT NOT NULL,
    record_mac TEXT NOT NULL,
    category TEXT NOT NULL,
    trigger_at BIGINT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (sweep_id, record_mac)
);
-- Legal holds set by operators: on a system, a category of it, or one
-- record (by keyed hash); checked just before every erase of a sweep.
CREATE TABLE retention_holds (
    id TEXT PRIMARY KEY,
    system TEXT NOT NULL,
    category TEXT,
    record_mac TEXT,
    reason TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    released_by TEXT,
    released_at BIGINT
);
CREATE INDEX retention_holds_system ON retention_holds (system, released_at);
-- Call budgets per system (token buckets) that every worker draws from.
CREATE TABLE rate_budgets (
    system TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated_at BIGINT NOT NULL
);
