-- Two-character substring search through an index.
--
-- The trigram index (users_fts) answers needles of three characters or more; a
-- two-character needle ("al", "qz") used to scan users in id order until a page of
-- matches was found: fast for a common pair, but a pair that few users contain
-- scanned the whole table (a million rows: seconds). users_bigrams indexes every
-- pair of adjacent characters of name_key and of email_key, each written as the
-- hex of its UTF-8 bytes ("al" -> 616C) so that any character, punctuation
-- included, makes a plain token. Contentless (the text is only ever matched, never
-- read back), rowids only (detail = none): a few bytes per user and pair.
--
-- Kept with users_fts by store::sqlite::search_index, before each write
-- transaction's COMMIT; the tokens come from its Rust function sb_bigrams, which
-- plain SQL cannot call, so the rows of the users already stored are added by the
-- store right after this migration (the marker below), not here.
CREATE VIRTUAL TABLE users_bigrams USING fts5 (
    grams,
    content = '', contentless_delete = 1, detail = none, tokenize = 'ascii'
);

-- Indexes to (re)build from the users table by the store after migrating.
CREATE TABLE search_index_rebuild (name TEXT PRIMARY KEY);
INSERT INTO search_index_rebuild (name) VALUES ('users_bigrams');
