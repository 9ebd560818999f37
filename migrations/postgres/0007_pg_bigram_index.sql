-- Two-character substring search through an index, as SQLite has had since 0006.
--
-- pg_trgm's indexes (0001) answer LIKE '%abc%' for three characters or more, but
-- take no trigram from '%al%': a two-character needle scanned users in id order
-- until a page of matches was found, and a pair that few users contain (or none)
-- read the whole table (a million rows: seconds). users_bigrams indexes every pair
-- of adjacent characters of name_key and of email_key (never a pair across the two),
-- as an expression index: nothing is stored in the table, and PostgreSQL keeps it
-- current on every write.
--
-- The store asks `sb_bigrams(name_key, email_key) @> ARRAY[pair]` together with
-- `strpos` on both keys (store::postgres::users::search_page). The planner reads the
-- index for a rare pair (or one nobody has) and walks the primary key for a common
-- one, where the cheap strpos is tested first and the function only runs on rows
-- that match. It chooses by the index's statistics (ANALYZE keeps them for index
-- expressions) and by the function's cost:
-- - COST 1000: it really costs ~10 us a row, and at the default (100) the planner
--   walked a million rows for a pair that no user has (1.5 s instead of 0.1 ms);
-- - PARALLEL UNSAFE: a page of 50 never pays for starting parallel workers, which
--   the high cost otherwise invites (tens of ms for pages found in one).
-- Building the index takes about 50 s per million users (on a busy 2-core machine),
-- during which writes to users wait.
CREATE FUNCTION sb_bigrams(name_key TEXT, email_key TEXT) RETURNS TEXT[]
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL UNSAFE COST 1000 AS $$
DECLARE
    grams TEXT[] := '{}';
BEGIN
    -- substr and length count characters, as Rust's chars() does on SQLite.
    FOR i IN 1 .. length(name_key) - 1 LOOP
        grams := grams || substr(name_key, i, 2);
    END LOOP;
    FOR i IN 1 .. length(email_key) - 1 LOOP
        grams := grams || substr(email_key, i, 2);
    END LOOP;
    RETURN grams;
END
$$;

CREATE INDEX users_bigrams ON users USING gin (sb_bigrams(name_key, email_key));
