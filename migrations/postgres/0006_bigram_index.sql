-- Nothing to do on PostgreSQL: this version adds SQLite's two-character search
-- index (migrations/sqlite/0006_bigram_index.sql). The file keeps the version
-- numbers of the two folders the same.
SELECT 1;
