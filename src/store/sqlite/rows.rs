//! What the rusqlite paths ([`super::inline`] reads, [`super::writer`] writes) share:
//! rows to domain types, values to text as sqlx writes them, errors to [`StoreError`].
//! The text formats must stay the ones sqlx reads and writes, since the same rows go
//! through both.

use rusqlite::types::Type;
use rusqlite::{ErrorCode, Row};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::directory::model::{Role, User};
use crate::store::messages::MessageRow;
use crate::store::{StoreError, sqlite_unique_columns, unique_violation};

/// SQLite's extended codes for a `UNIQUE` and a `PRIMARY KEY` constraint failure.
const CONSTRAINT_UNIQUE: std::ffi::c_int = 2067;
const CONSTRAINT_PRIMARYKEY: std::ffi::c_int = 1555;

pub fn store_error(err: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, message) = &err {
        if matches!(
            failure.extended_code,
            CONSTRAINT_UNIQUE | CONSTRAINT_PRIMARYKEY
        ) {
            // As on the sqlx paths: the message names the index's columns.
            let columns = message.as_deref().map_or("", sqlite_unique_columns);
            return unique_violation(columns);
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
    use crate::store::Unique;

    /// SQLite names an index by its columns: both ways it reports a duplicate (a
    /// UNIQUE index, a PRIMARY KEY) map to the index that refused it.
    #[test]
    fn unique_failures_are_mapped_by_the_columns_sqlite_names() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, email_key TEXT);
             CREATE UNIQUE INDEX users_email_key ON users (email_key);
             CREATE TABLE messages (room TEXT, id INTEGER, user_id INTEGER, client_id TEXT,
                                    PRIMARY KEY (room, id)) WITHOUT ROWID;
             CREATE UNIQUE INDEX messages_client_id ON messages (room, user_id, client_id)
                 WHERE client_id IS NOT NULL;
             INSERT INTO users VALUES (1, 'a@x.io');
             INSERT INTO messages VALUES ('general', 1, 7, 'c1');",
        )
        .unwrap();
        let fail = |sql: &str| store_error(conn.execute(sql, []).unwrap_err());
        assert!(matches!(
            fail("INSERT INTO users VALUES (2, 'a@x.io')"),
            StoreError::EmailTaken
        ));
        assert!(matches!(
            fail("INSERT INTO messages VALUES ('general', 2, 7, 'c1')"),
            StoreError::Duplicate(Unique::MessageClientId)
        ));
        assert!(matches!(
            fail("INSERT INTO messages VALUES ('general', 1, 8, NULL)"),
            StoreError::Duplicate(Unique::MessagePosition)
        ));
    }
}
