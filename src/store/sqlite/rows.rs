//! Rows to domain types, values to text, errors to [`StoreError`], for every
//! statement on SQLite ([`super::inline`] reads, [`super::writer`] writes). The text
//! formats are the ones sqlx wrote when it ran the SQLite store, so databases made
//! then read the same.

use rusqlite::types::Type;
use rusqlite::{ErrorCode, Row};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::model::ApiToken;
use crate::directory::model::{Role, Settings, User};
use crate::store::StoreError;
use crate::store::constraints::sqlite_unique_violation;
use crate::store::messages::MessageRow;

/// SQLite's extended codes for a `UNIQUE` and a `PRIMARY KEY` constraint failure.
const CONSTRAINT_UNIQUE: std::ffi::c_int = 2067;
const CONSTRAINT_PRIMARYKEY: std::ffi::c_int = 1555;

pub fn store_error(err: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, message) = &err {
        if matches!(
            failure.extended_code,
            CONSTRAINT_UNIQUE | CONSTRAINT_PRIMARYKEY
        ) {
            // The message names the index's columns.
            return sqlite_unique_violation(message.as_deref().unwrap_or(""));
        }
        if matches!(
            failure.code,
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::CannotOpen
        ) {
            return StoreError::Unavailable(err.into());
        }
    }
    StoreError::Other(err.into())
}

/// The [`User`] whose columns (`id, name, email, role, created_at, updated_at`) start
/// at column `at`.
pub fn user_at(row: &Row<'_>, at: usize) -> rusqlite::Result<User> {
    let role: String = row.get(at + 3)?;
    Ok(User {
        id: row.get(at)?,
        name: row.get(at + 1)?,
        email: row.get(at + 2)?,
        role: Role::try_from(role).map_err(|e| conversion(at + 3, e.into()))?,
        created_at: timestamp(row, at + 4)?,
        updated_at: timestamp(row, at + 5)?,
    })
}

/// A timestamp as sqlx writes it on SQLite: RFC 3339 text.
fn timestamp(row: &Row<'_>, at: usize) -> rusqlite::Result<OffsetDateTime> {
    // Parsed in place, without copying the text out first.
    let text = row
        .get_ref(at)?
        .as_str()
        .map_err(|e| conversion(at, e.into()))?;
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| conversion(at, e.into()))
}

fn conversion(at: usize, err: Box<dyn std::error::Error + Send + Sync>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(at, Type::Text, err)
}

/// A timestamp as sqlx writes it on SQLite.
pub fn timestamp_text(ts: OffsetDateTime) -> rusqlite::Result<String> {
    ts.format(&Rfc3339)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))
}

/// An [`ApiToken`] whose columns (`token_columns!`) start at column 0.
pub fn token_row(row: &Row<'_>) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        id: row.get(0)?,
        user_id: row.get(1)?,
        name: row.get(2)?,
        prefix: row.get(3)?,
        created_at: row.get(4)?,
        expires_at: row.get(5)?,
        last_used_at: row.get(6)?,
        revoked_at: row.get(7)?,
    })
}

/// `theme, notify_mentions, notify_admin_changes` as [`Settings`].
pub fn settings_row(row: &Row<'_>) -> rusqlite::Result<Settings> {
    Ok(Settings::new(row.get(0)?, row.get(1)?, row.get(2)?))
}

/// A `messages` row whose columns (`message_columns!`) start at column 0.
pub fn message_row(row: &Row<'_>) -> rusqlite::Result<MessageRow> {
    Ok(MessageRow {
        room: row.get(0)?,
        id: row.get(1)?,
        user_id: row.get(2)?,
        user_name: row.get(3)?,
        text: row.get(4)?,
        event: row.get(5)?,
        client_id: row.get(6)?,
        created_ms: row.get(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite names an index by its columns: each way it reports a duplicate (a
    /// UNIQUE index, a PRIMARY KEY) on the migrated schema maps to the index that
    /// refused it (`constraints`' table has each index's columns right).
    #[tokio::test]
    async fn unique_failures_on_the_migrated_schema_are_mapped_to_their_index() {
        use crate::store::Lifecycle;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("unique.db");
        let store = crate::store::sqlite::SqliteStore::connect(path.to_str().unwrap(), 1)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store.close().await;
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, name, email, name_key, email_key, role, created_at, updated_at)
                 VALUES (1, 'A', 'a@x.io', 'a', 'a@x.io', 'member', 'x', 'x');
             INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at)
                 VALUES ('s1', 1, 0, 0, 0);
             INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at)
                 VALUES (1, 't', 'h1', 'p', 0);
             INSERT INTO rooms (name, last_id, pruned_through, created_ms)
                 VALUES ('general', 1, 0, 0);
             INSERT INTO messages (room, id, user_id, user_name, text, client_id, created_ms)
                 VALUES ('general', 1, 1, 'A', 'hi', 'c1', 0);",
        )
        .unwrap();
        let fail = |sql: &str| format!("{:?}", store_error(conn.execute(sql, []).unwrap_err()));
        let cases = [
            (
                "INSERT INTO users (name, email, name_key, email_key, role, created_at, updated_at)
                 VALUES ('B', 'A@x.io', 'b', 'a@x.io', 'member', 'x', 'x')",
                "EmailTaken",
            ),
            (
                "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at)
                 VALUES ('s1', 1, 0, 0, 0)",
                "Duplicate(SessionId)",
            ),
            (
                "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at)
                 VALUES (1, 't2', 'h1', 'p', 0)",
                "Duplicate(TokenHash)",
            ),
            (
                "INSERT INTO messages (room, id, user_id, user_name, text, client_id, created_ms)
                 VALUES ('general', 2, 1, 'A', 'hi', 'c1', 0)",
                "Duplicate(MessageClientId)",
            ),
            (
                "INSERT INTO messages (room, id, user_id, user_name, text, created_ms)
                 VALUES ('general', 1, 1, 'A', 'again', 0)",
                "Duplicate(MessagePosition)",
            ),
        ];
        for (sql, expected) in cases {
            assert_eq!(fail(sql), expected, "{sql}");
        }
    }
}
