-- Nothing to do on SQLite: this version adds PostgreSQL's two-character search
-- index (migrations/postgres/0007_pg_bigram_index.sql), which SQLite has had since
-- 0006. The file keeps the version numbers of the two folders the same.
SELECT 1;
