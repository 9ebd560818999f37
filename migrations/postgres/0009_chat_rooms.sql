-- Chat for daily use (issue 21); see migrations/sqlite/0009_chat_rooms.sql.
-- `case_duplicate` is 0/1 as in SQLite, so both run the same statements (and the
-- partial index's condition is the one those statements write).
ALTER TABLE rooms ADD COLUMN case_duplicate SMALLINT NOT NULL DEFAULT 0;
UPDATE rooms SET case_duplicate = 1
WHERE EXISTS (
    SELECT 1 FROM rooms AS older
    WHERE lower(older.name) = lower(rooms.name)
      AND (older.created_ms < rooms.created_ms
           OR (older.created_ms = rooms.created_ms AND older.name < rooms.name))
);
CREATE UNIQUE INDEX rooms_name_key ON rooms (lower(name)) WHERE case_duplicate = 0;

CREATE TABLE room_members (
    user_id   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room      TEXT   NOT NULL REFERENCES rooms (name) ON DELETE CASCADE,
    joined_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, room)
);
