-- Systems an operator paused: their tasks stay queued, unclaimed, until
-- resumed (a vendor outage announced, a system under maintenance).
CREATE TABLE paused_systems (
    system TEXT PRIMARY KEY,
    paused_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    paused_at INTEGER NOT NULL
);
