-- The number of users, kept by triggers (see migrations/sqlite/0004_user_count.sql
-- for why). Statement-level triggers with transition tables: a bulk load of a
-- million rows updates the counter once, not a million times.
CREATE TABLE user_count (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT  NOT NULL
);
INSERT INTO user_count (id, n) SELECT 1, count(*) FROM users;

CREATE FUNCTION user_count_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE user_count SET n = n + (SELECT count(*) FROM added) WHERE id = 1;
    RETURN NULL;
END
$$;
CREATE FUNCTION user_count_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE user_count SET n = n - (SELECT count(*) FROM removed) WHERE id = 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER user_count_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION user_count_added();
CREATE TRIGGER user_count_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION user_count_removed();
