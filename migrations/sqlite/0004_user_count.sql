-- The number of users, kept by triggers: the unfiltered list answers with it
-- (X-Total-Count) on every request, and count(*) over a million rows is a scan
-- that took up to seconds under load (bench/REPORT.md). Same version as
-- migrations/postgres/0004_user_count.sql.
CREATE TABLE user_count (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO user_count (id, n) SELECT 1, count(*) FROM users;

CREATE TRIGGER user_count_insert AFTER INSERT ON users BEGIN
    UPDATE user_count SET n = n + 1 WHERE id = 1;
END;
CREATE TRIGGER user_count_delete AFTER DELETE ON users BEGIN
    UPDATE user_count SET n = n - 1 WHERE id = 1;
END;
