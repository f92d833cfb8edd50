-- The audit chain: every event carries the hash of the one before it and
-- its own, SHA-256 over the previous hash and the event's fields; the head
-- (count and last hash) lives in one row, updated in the same transaction
-- as each append, which also serialises appends. Events written before
-- this version have no hash and stay outside the chain.
ALTER TABLE events ADD COLUMN prev_hash TEXT;
ALTER TABLE events ADD COLUMN hash TEXT;
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
