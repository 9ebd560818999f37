-- Your account (issue 20); see migrations/sqlite/0008_account.sql.
ALTER TABLE users ADD COLUMN notify_mentions BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE users ADD COLUMN notify_admin_changes BOOLEAN NOT NULL DEFAULT TRUE;
UPDATE users SET notify_mentions = notifications, notify_admin_changes = notifications;

ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN client_ip TEXT;

CREATE TABLE read_positions (
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room         TEXT   NOT NULL,
    last_read_id BIGINT NOT NULL,
    updated_ms   BIGINT NOT NULL,
    PRIMARY KEY (user_id, room)
);

CREATE INDEX messages_user_id ON messages (user_id) WHERE user_id IS NOT NULL;
