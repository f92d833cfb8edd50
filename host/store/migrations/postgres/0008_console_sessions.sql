-- Operator console sessions, shared by every `serve` process on the store
-- and kept across restarts. The cookie's id is kept only as its SHA-256;
-- the CSRF token is derived from the id, never stored; a session opened
-- with an API token names the token (its id), which is checked at every
-- page, never the token itself.
CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    token_id TEXT,
    lang TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    seen_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_seen ON console_sessions (seen_at);
