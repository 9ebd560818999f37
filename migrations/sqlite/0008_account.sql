-- Your account (issue 20): notification preferences by kind, what a session was
-- opened from, and read positions. Same version as migrations/postgres/0008_account.sql.

-- One switch per kind of notification, replacing the single `notifications` flag
-- (kept, unused, so older binaries still read a valid row; the API derives its
-- `notifications` from these two).
ALTER TABLE users ADD COLUMN notify_mentions INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN notify_admin_changes INTEGER NOT NULL DEFAULT 1;
UPDATE users SET notify_mentions = notifications, notify_admin_changes = notifications;

-- Shown on the account page so people can tell their sessions apart; NULL for
-- sessions made before this migration.
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN client_ip TEXT;

-- How far each user has read in a room: the id of the last message they have seen.
-- Per (user, room), so the notification room's unread count (issue 20) and the chat
-- rooms' (issue 21) are the same question. Only ever moves forward.
CREATE TABLE read_positions (
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room         TEXT    NOT NULL,
    last_read_id INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL,
    PRIMARY KEY (user_id, room)
) WITHOUT ROWID;

-- `stats.posts` of a profile counts a user's messages.
CREATE INDEX messages_user_id ON messages (user_id) WHERE user_id IS NOT NULL;
