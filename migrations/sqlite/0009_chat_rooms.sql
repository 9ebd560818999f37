-- Chat for daily use (issue 21): room names unique without regard to case, and the
-- rooms each person keeps in their list. Same version as
-- migrations/postgres/0009_chat_rooms.sql. Read positions are 0008's table, shared
-- with the notifications: a chat room's position is one more (user, room) row.

-- `#general` and `#General` are one room, shown as first written. Rooms made before
-- this migration may already differ only by case: the oldest of each keeps the name,
-- the later ones are marked and stay readable by their exact name, but are not listed
-- and do not block the unique index. Room names are ASCII, so lower() folds them
-- the same way in both databases.
ALTER TABLE rooms ADD COLUMN case_duplicate INTEGER NOT NULL DEFAULT 0;
UPDATE rooms SET case_duplicate = 1
WHERE EXISTS (
    SELECT 1 FROM rooms AS older
    WHERE lower(older.name) = lower(rooms.name)
      AND (older.created_ms < rooms.created_ms
           OR (older.created_ms = rooms.created_ms AND older.name < rooms.name))
);
CREATE UNIQUE INDEX rooms_name_key ON rooms (lower(name)) WHERE case_duplicate = 0;

-- The rooms a person opened (or was given: both people of a direct message), kept
-- in their list until they leave. Direct-message rooms (`dm:A:B`) are private to
-- their two members; the hub decides that from the name, this table lists them.
CREATE TABLE room_members (
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room      TEXT    NOT NULL REFERENCES rooms (name) ON DELETE CASCADE,
    joined_ms INTEGER NOT NULL,
    PRIMARY KEY (user_id, room)
) WITHOUT ROWID;
