-- The audit log becomes a Merkle tree (RFC 9162) beside the hash chain,
-- and appending no longer moves a shared row: an event is written with no
-- place in the log (`leaf` NULL), and the sequencer (one process at a time,
-- under the `sequencer` lease) gives waiting events their place, their
-- chain link and their tree nodes in batches. Events already chained keep
-- their hashes and take their place in chain order; events from before the
-- chain stay outside it (a negative `leaf`). `digest` is the SHA-256 of a
-- document an event attests (a certificate), so that the log proves it.
ALTER TABLE events ADD COLUMN leaf BIGINT;
ALTER TABLE events ADD COLUMN digest TEXT;
UPDATE events SET leaf = -id WHERE hash IS NULL;
UPDATE events SET leaf = r.n - 1
    FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM events WHERE hash IS NOT NULL) AS r
    WHERE events.id = r.id;
CREATE UNIQUE INDEX events_leaf ON events (leaf);
CREATE INDEX events_waiting ON events (id) WHERE leaf IS NULL;
-- `built`: leaves whose tree nodes exist (the chained events of older
-- stores get theirs from the sequencer's first pass).
ALTER TABLE audit_head ADD COLUMN built BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_head ADD COLUMN frontier TEXT NOT NULL DEFAULT '';
-- Complete subtrees: level 0 is a leaf's hash, level l covers leaves
-- idx·2^l .. (idx+1)·2^l.
CREATE TABLE audit_nodes (
    level BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (level, idx)
);
-- Signed tree heads: size, root, time, RSA-PSS by the signing key.
CREATE TABLE tree_heads (
    size BIGINT PRIMARY KEY,
    root TEXT NOT NULL,
    signed_at BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);
-- Roles one process holds at a time, taken over when the holder's lease
-- runs out; `token` grows with every new holder and fences the old one.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
-- Webhooks now follow the log's order: their cursor counts the log's
-- events already handled.
UPDATE webhook_cursors SET last_event_id = COALESCE(
    (SELECT MAX(leaf) + 1 FROM events WHERE events.id <= webhook_cursors.last_event_id AND events.leaf >= 0), 0);
-- and signed tree heads are delivered too: the size of the last one sent.
ALTER TABLE webhook_cursors ADD COLUMN last_head BIGINT NOT NULL DEFAULT 0;
