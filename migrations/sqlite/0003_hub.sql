-- The realtime hub's message log (src/hub). Same shape and version as
-- migrations/postgres/0003_hub.sql.
--
-- Every room has its own gapless sequence: rooms.last_id is incremented in the
-- transaction that inserts the message, so ids within a room are 1, 2, 3... with no
-- holes, and "everything after N" is an exact question on any transport.
-- Times are Unix milliseconds: retention compares them in SQL.
CREATE TABLE rooms (
    name           TEXT    PRIMARY KEY,
    last_id        INTEGER NOT NULL DEFAULT 0,
    -- The highest id retention has deleted: a client whose position is below it
    -- cannot be replayed exactly and gets a `reset` instead.
    pruned_through INTEGER NOT NULL DEFAULT 0,
    created_ms     INTEGER NOT NULL
);

CREATE TABLE messages (
    room       TEXT    NOT NULL REFERENCES rooms (name) ON DELETE CASCADE,
    id         INTEGER NOT NULL,
    -- No foreign key: a message outlives its author's account. NULL = the server.
    user_id    INTEGER,
    user_name  TEXT    NOT NULL,
    text       TEXT    NOT NULL,
    -- JSON of a structured event (a directory change, a notification), or NULL.
    event      TEXT,
    client_id  TEXT,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (room, id)
) WITHOUT ROWID;

-- A retried send (same author, room and client_id) finds its first copy here.
CREATE UNIQUE INDEX messages_client_id ON messages (room, user_id, client_id)
    WHERE client_id IS NOT NULL;
CREATE INDEX messages_created_ms ON messages (created_ms);
