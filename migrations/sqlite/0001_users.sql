-- The user directory.
--
-- name_key / email_key hold the names folded to lower case by Rust
-- (directory::model::match_key): SQLite's lower(), LIKE and NOCASE fold ASCII only,
-- so folding in SQL would let 'ÄLICE@x.io' and 'älice@x.io' both in.
CREATE TABLE users (
    -- AUTOINCREMENT: an id is never reused after a delete, so a client's cached
    -- /api/users/7 can never silently become somebody else.
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    name_key      TEXT    NOT NULL,
    email_key     TEXT    NOT NULL,
    role          TEXT    NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member')),
    -- argon2id PHC string; NULL = cannot log in (e.g. synthetic or imported users).
    password_hash TEXT,
    theme         TEXT    NOT NULL DEFAULT 'system' CHECK (theme IN ('system', 'light', 'dark')),
    notifications INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
);

-- Uniqueness lives in the index, so two racing creates get one row and one
-- constraint error (mapped to 409), never two rows.
CREATE UNIQUE INDEX users_email_key ON users (email_key);

-- Autocomplete is a prefix range scan on the folded name (store::prefix_upper_bound).
CREATE INDEX users_name_key ON users (name_key, id);

-- Substring search over name and email. The trigram tokenizer matches any
-- substring of three characters or more; shorter needles fall back to a scan.
-- External content: the text lives once, in users; triggers keep the index current.
CREATE VIRTUAL TABLE users_fts USING fts5 (
    name_key, email_key,
    content = 'users', content_rowid = 'id',
    tokenize = 'trigram'
);

CREATE TRIGGER users_fts_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_fts (rowid, name_key, email_key) VALUES (new.id, new.name_key, new.email_key);
END;
CREATE TRIGGER users_fts_delete AFTER DELETE ON users BEGIN
    INSERT INTO users_fts (users_fts, rowid, name_key, email_key)
        VALUES ('delete', old.id, old.name_key, old.email_key);
END;
CREATE TRIGGER users_fts_update AFTER UPDATE OF name_key, email_key ON users BEGIN
    INSERT INTO users_fts (users_fts, rowid, name_key, email_key)
        VALUES ('delete', old.id, old.name_key, old.email_key);
    INSERT INTO users_fts (rowid, name_key, email_key) VALUES (new.id, new.name_key, new.email_key);
END;
