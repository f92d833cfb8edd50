-- Consent evidence (Art. 7(1)): append-only, each entry chained by hash to
-- the one before it (its own chain, with its head), and each also appended
-- to the audit chain. Identifiers and evidence are sealed; lookups go
-- through blind indexes.
CREATE TABLE consent_events (
    id BIGSERIAL PRIMARY KEY,
    key_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    action TEXT NOT NULL,
    lawful_basis TEXT NOT NULL,
    channel TEXT NOT NULL,
    source_system TEXT,
    evidence_sealed BYTEA NOT NULL,
    at BIGINT NOT NULL,
    recorded_by TEXT NOT NULL,
    request_id TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE consent_index (
    hash TEXT NOT NULL,
    consent_id BIGINT NOT NULL,
    PRIMARY KEY (hash, consent_id)
);
CREATE TABLE consent_head (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO consent_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
