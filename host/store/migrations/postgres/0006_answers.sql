-- The answer to an access or portability request, kept when the request
-- completes (Art. 15 speaks of a point in time): the ZIP in sealed pieces,
-- under the request's data key, so shredding the request destroys it.
-- Pieces are written under an attempt id; the answer names the attempt
-- that finished, and a worker that died mid-way leaves pieces that are
-- dropped when another attempt is kept.
CREATE TABLE answer_chunks (
    request_id TEXT NOT NULL,
    attempt TEXT NOT NULL,
    seq BIGINT NOT NULL,
    chunk BYTEA NOT NULL,
    PRIMARY KEY (request_id, attempt, seq)
);
CREATE TABLE answers (
    request_id TEXT PRIMARY KEY,
    attempt TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    len BIGINT NOT NULL,
    chunks BIGINT NOT NULL,
    summary_sealed BYTEA NOT NULL,
    kept_at BIGINT NOT NULL,
    removed_at BIGINT
);
