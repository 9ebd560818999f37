-- Sessions, API tokens and server secrets.
--
-- Credentials are stored only as SHA-256 hashes (hex): a copy of this database
-- (a backup, a leaked file) opens no session and authenticates no client. The ids
-- are 256-bit random values, so a fast hash is enough; passwords use argon2id.
-- Times here are Unix seconds (INTEGER): they are compared in SQL when pruning,
-- and integers compare correctly where RFC 3339 text of varying precision does not.
CREATE TABLE sessions (
    id_hash      TEXT    PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    -- absolute expiry; the idle expiry is last_seen_at + the configured idle time
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL,
    -- the first characters of the token, shown in listings so people can tell
    -- their tokens apart without the token itself
    prefix       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE UNIQUE INDEX api_tokens_token_hash ON api_tokens (token_hash);
CREATE INDEX api_tokens_user_id ON api_tokens (user_id);

-- Keys every instance must share (e.g. the CSRF signing key), made on first start.
CREATE TABLE server_secrets (
    name       TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
