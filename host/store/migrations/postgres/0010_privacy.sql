-- The privacy center. A challenge is a code sent to prove control of an
-- email address: before a request is filed (purpose 'file': the request
-- asked for, sealed under the id it will be filed as) or before its answer
-- is handed out ('download'). The challenge's handle (in the page's URL: a
-- random token, never an identifier) is kept as its SHA-256, the code only
-- as a keyed hash.
CREATE TABLE privacy_challenges (
    handle_hash TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    draft_sealed BYTEA,
    code_mac TEXT NOT NULL,
    lang TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    failures BIGINT NOT NULL DEFAULT 0,
    used_at BIGINT,
    open_until BIGINT,
    -- 'phone' once the email address is proven and a code went to the
    -- phone number by text message.
    phase TEXT
);
CREATE INDEX privacy_challenges_request ON privacy_challenges (request_id);
CREATE INDEX privacy_challenges_expiry ON privacy_challenges (expires_at);
-- What was counted for the rate limits: codes sent to an address, requests
-- started from a client, each by a keyed hash (an address and a client's IP
-- are personal data).
CREATE TABLE privacy_counts (
    mac TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX privacy_counts_mac ON privacy_counts (mac, at);
-- Status links given to subjects: the SHA-256 of the link's token, the
-- request it shows, and the last state the subject was told of.
CREATE TABLE privacy_links (
    token_hash TEXT PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    lang TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    told_state TEXT NOT NULL,
    downloads BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX privacy_links_told ON privacy_links (told_state);
