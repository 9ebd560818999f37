-- Search folds accents: `bjorn` finds Björn and `Björn` finds Bjorn.
--
-- name_key now holds directory::model::match_key(name), which folds accents as well
-- as case (it used to fold case only). It is matched, never unique, so folding it
-- changes no rule about duplicates. email_key keeps folding case only: it is the key
-- emails are unique by (`jose@bücher.de` and `jose@bucher.de` are two addresses).
--
-- PostgreSQL cannot fold exactly as Rust does (unaccent is an extension, with its own
-- table), so the store keys the stored names again right after this migration
-- (store::postgres::users::refold_marked), in batches, then clears the mark. The
-- pg_trgm and bigram indexes follow by themselves.
CREATE TABLE search_index_rebuild (name TEXT PRIMARY KEY);
INSERT INTO search_index_rebuild (name) VALUES ('name_key');

-- /api/search's email-prefix candidates: a range of email keys in code point order,
-- as users_name_key serves names (the unique index users_email_key is in the
-- database's collation, which a range in "C" order cannot use).
CREATE INDEX users_email_prefix ON users (email_key COLLATE "C");
