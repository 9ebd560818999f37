-- The realtime hub's message log (src/hub). Same shape and version as
-- migrations/sqlite/0003_hub.sql, where the design is explained: a gapless
-- per-room sequence in rooms.last_id, allocated in the inserting transaction
-- (the UPDATE's row lock orders concurrent senders to one room).
CREATE TABLE rooms (
    name           TEXT   PRIMARY KEY,
    last_id        BIGINT NOT NULL DEFAULT 0,
    pruned_through BIGINT NOT NULL DEFAULT 0,
    created_ms     BIGINT NOT NULL
);

CREATE TABLE messages (
    room       TEXT   NOT NULL REFERENCES rooms (name) ON DELETE CASCADE,
    id         BIGINT NOT NULL,
    user_id    BIGINT,
    user_name  TEXT   NOT NULL,
    text       TEXT   NOT NULL,
    event      TEXT,
    client_id  TEXT,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (room, id)
);

CREATE UNIQUE INDEX messages_client_id ON messages (room, user_id, client_id)
    WHERE client_id IS NOT NULL;
CREATE INDEX messages_created_ms ON messages (created_ms);
