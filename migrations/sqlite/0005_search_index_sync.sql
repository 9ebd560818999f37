-- The trigram index (users_fts) is brought up to date once per write transaction
-- instead of once per row.
--
-- Why: FTS5 writes its pending changes out as a new index segment at every
-- savepoint, and each statement that runs a trigger opens one. With per-row
-- triggers, every user created became a segment of its own, merged again later:
-- about a quarter of the server's time on POST /api/users (bench/REPORT.md,
-- profile). Now the row triggers only note which ids changed, in
-- users_fts_pending, and store::sqlite::search_index::sync applies them all with
-- one INSERT .. SELECT just before the transaction commits, so readers never see
-- the two disagree. Every write transaction that changes users.name_key or
-- users.email_key runs on the group-commit writer, which runs it before each
-- COMMIT.
DROP TRIGGER users_fts_insert;
DROP TRIGGER users_fts_delete;
DROP TRIGGER users_fts_update;

-- One row per user changed since the last sync, holding what the index has for
-- that id: its keys, or NULLs when the index has nothing (a user created since).
-- The first change since a sync wins (INSERT OR IGNORE): later ones in the same
-- transaction do not change what the index holds.
CREATE TABLE users_fts_pending (
    id            INTEGER PRIMARY KEY,
    old_name_key  TEXT,
    old_email_key TEXT
);

CREATE TRIGGER users_fts_note_insert AFTER INSERT ON users BEGIN
    INSERT OR IGNORE INTO users_fts_pending (id) VALUES (new.id);
END;
CREATE TRIGGER users_fts_note_delete AFTER DELETE ON users BEGIN
    INSERT OR IGNORE INTO users_fts_pending (id, old_name_key, old_email_key)
        VALUES (old.id, old.name_key, old.email_key);
END;
CREATE TRIGGER users_fts_note_update AFTER UPDATE OF name_key, email_key ON users BEGIN
    INSERT OR IGNORE INTO users_fts_pending (id, old_name_key, old_email_key)
        VALUES (old.id, old.name_key, old.email_key);
END;
