-- bench/pg_seed.sql: synthetic users 0..:n-1 for the PostgreSQL section of bench/run,
-- made by the server in one INSERT instead of being sent (a million: 77 s with
-- migrations 0001-0006 at load ~3, 580 s with 0007's bigram index too at load ~17 on
-- this shared 2-core machine; made once and kept). The same people as
-- src/directory/synthetic.rs `user(i)`, which SQLite's bench databases are seeded
-- with: first name i % 50, last name (i / 50) % 50, email of their ASCII letters;
-- keep the two in step (bench/run warns when they differ). `ON CONFLICT` skips those
-- present.
-- usage: psql -v n=1000 -f bench/pg_seed.sql DATABASE
INSERT INTO users (name, email, name_key, email_key, role, created_at, updated_at)
SELECT name, email, lower(name), lower(email), 'member', now(), now()
FROM (
    SELECT f || ' ' || l AS name,
           lower(regexp_replace(f, '[^A-Za-z]', '', 'g')) || '.'
               || lower(regexp_replace(l, '[^A-Za-z]', '', 'g')) || '.' || i || '@example.test' AS email
    FROM generate_series(0, :n - 1) AS i,
    LATERAL (SELECT
        (ARRAY[
            'Alice', 'Bob', 'Charlie', 'Diana', 'Edward', 'Fatima', 'George', 'Hana', 'Ivan', 'Julia',
            'Kenji', 'Laura', 'Mohamed', 'Nina', 'Oscar', 'Priya', 'Quentin', 'Rosa', 'Samuel', 'Tara',
            'Umar', 'Valeria', 'William', 'Xiu', 'Yusuf', 'Zoë', 'Amélie', 'Björn', 'Chloé', 'Dmitri',
            'Élodie', 'François', 'Gökhan', 'Håkon', 'Inès', 'Jürgen', 'Katarzyna', 'Łukasz', 'Mónica', 'Noémie',
            'Øyvind', 'Pál', 'René', 'Søren', 'Tomás', 'Ülle', 'Vít', 'Wojciech', 'Ximena', 'Yannick'])[1 + i % 50] AS f,
        (ARRAY[
            'Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Martinez',
            'Hernandez', 'Lopez', 'Gonzalez', 'Wilson', 'Anderson', 'Thomas', 'Taylor', 'Moore', 'Jackson', 'Martin',
            'Lee', 'Perez', 'Thompson', 'White', 'Harris', 'Sanchez', 'Clark', 'Ramirez', 'Lewis', 'Robinson',
            'Walker', 'Young', 'Allen', 'King', 'Wright', 'Scott', 'Torres', 'Nguyen', 'Hill', 'Flores',
            'Müller', 'Schröder', 'Østergaard', 'Ångström', 'Nakamura', 'Kowalski', 'Novák', 'Dubois', 'Rossi', 'Papadopoulos'])[1 + (i / 50) % 50] AS l) AS x
) AS u
ON CONFLICT (email_key) DO NOTHING;
-- name_key above folds case only; the server's match_key also folds accents, which
-- SQL cannot do the same way: the mark of migration 0010 has the next
-- `switchboard migrate` key these names again (bench/lib.sh runs it next).
INSERT INTO search_index_rebuild (name) VALUES ('name_key') ON CONFLICT DO NOTHING;
