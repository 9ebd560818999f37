-- Nothing to do on PostgreSQL: this version moves SQLite's trigram index
-- maintenance out of its per-row triggers (migrations/sqlite/0005_search_index_sync.sql).
-- pg_trgm's GIN indexes are maintained by PostgreSQL itself, with its pending list
-- (fastupdate) playing the same part. The file keeps the version numbers of the two
-- folders the same.
SELECT 1;
